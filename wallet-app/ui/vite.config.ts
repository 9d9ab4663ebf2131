import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { svelteTesting } from '@testing-library/svelte/vite';

// The Tauri app loads dist/ through its own protocol with the CSP
// `default-src 'self'; style-src 'self'; connect-src ipc: http://ipc.localhost`,
// so the build must not inline scripts or styles anywhere.
export default defineConfig({
  plugins: [svelte(), svelteTesting()],
  clearScreen: false,
  server: {
    port: 1420,
    strictPort: true,
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Never turn a small asset into a data: URL or an inline chunk.
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    sourcemap: false,
    // Tauri's webviews: WebKitGTK 2.4x, iOS/macOS WebKit (Safari 16+), Android WebView / WebView2.
    target: ['es2022', 'safari16', 'chrome110'],
  },
  test: {
    environment: 'jsdom',
    include: ['tests/**/*.test.ts'],
    setupFiles: ['tests/setup.ts'],
    restoreMocks: true,
    // Two cores shared with a Rust build: keep the test run small.
    maxWorkers: 1,
    testTimeout: 10_000,
  },
});
