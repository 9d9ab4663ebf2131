import { describe, expect, it } from 'vitest';
import { mockScenario } from '../src/dev-mock';

describe('dev mock switch', () => {
  it('is on for a known scenario in a plain browser', () => {
    expect(mockScenario('?mock=request', false)).toBe('request');
    expect(mockScenario('?platform=ios&mock=enroll', false)).toBe('enroll');
    expect(mockScenario('?mock=unlock', false)).toBe('unlock');
    expect(mockScenario('?mock=unlock-first-run', false)).toBe('unlock-first-run');
  });

  it('is never on inside Tauri', () => {
    expect(mockScenario('?mock=request', true)).toBeNull();
  });

  it('is off without a scenario or with an unknown one', () => {
    expect(mockScenario('', false)).toBeNull();
    expect(mockScenario('?mock=', false)).toBeNull();
    expect(mockScenario('?mock=everything', false)).toBeNull();
  });
});
