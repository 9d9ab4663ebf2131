import { afterEach } from 'vitest';
import { clearMocks } from '@tauri-apps/api/mocks';

// @testing-library/svelte's plugin unmounts rendered components after each test; the
// Tauri mocks are reset here so no test sees another's backend.
afterEach(() => {
  if (typeof window !== 'undefined') clearMocks();
});
