import './app.css';
import { mount } from 'svelte';
import App from './App.svelte';
import { installDevMock } from './dev-mock';

// Only with `?mock=<scenario>` in a plain browser; a no-op inside Tauri.
installDevMock();

const target = document.getElementById('app');
if (!target) throw new Error('index.html has no #app element');

export default mount(App, { target });
