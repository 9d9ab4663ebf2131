import { describe, expect, it } from 'vitest';
import {
  formatClock,
  formatCountdown,
  formatDateTime,
  formatDuration,
  formatRelative,
  secondsLeft,
} from '../src/lib/format';

describe('countdown', () => {
  it.each([
    [102, 'expires in 1:42'],
    [60, 'expires in 1:00'],
    [59, 'expires in 0:59'],
    [1, 'expires in 0:01'],
    [3725, 'expires in 1:02:05'],
    [0, 'expired'],
    [-30, 'expired'],
  ])('%i seconds left → %s', (left, text) => {
    expect(formatCountdown(left)).toBe(text);
  });

  it('counts a started second as left', () => {
    expect(secondsLeft(1000, 999_000)).toBe(1);
    expect(secondsLeft(1000, 998_001)).toBe(2);
    expect(secondsLeft(1000, 1_000_000)).toBe(0);
    expect(secondsLeft(1000, 1_000_500)).toBeLessThanOrEqual(0);
  });

  it('pads minutes and seconds', () => {
    expect(formatClock(9)).toBe('0:09');
    expect(formatClock(600)).toBe('10:00');
    expect(formatClock(36_000)).toBe('10:00:00');
  });
});

describe('durations', () => {
  it.each([
    [900, '15 minutes'],
    [60, '1 minute'],
    [45, '45 seconds'],
    [3600, '1 hour'],
    [5400, '1 hour 30 minutes'],
    [86_400, '1 day'],
    [90_061, '1 day 1 hour 1 minute 1 second'],
    [0, '0 seconds'],
  ])('%i → %s', (secs, text) => {
    expect(formatDuration(secs)).toBe(text);
  });
});

describe('relative times', () => {
  const now = 1_000_000 * 1000;
  it.each([
    [1_000_000, 'just now'],
    [1_000_000 - 30, '30 seconds ago'],
    [1_000_000 - 120, '2 minutes ago'],
    [1_000_000 - 7200, '2 hours ago'],
    [1_000_000 - 86_400, 'yesterday'],
    [1_000_000 - 3 * 86_400, '3 days ago'],
  ])('%i → %s', (then, text) => {
    expect(formatRelative(then, now)).toBe(text);
  });
});

describe('dates', () => {
  it('formats a local date and time', () => {
    expect(formatDateTime(1_765_033_440, 'en-US', 'UTC')).toBe('Dec 6, 2025, 3:04 PM');
  });
});
