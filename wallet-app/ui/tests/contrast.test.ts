// WCAG 2.2 AA contrast of the colour pairs the stylesheet actually uses, in both schemes.

// @vitest-environment node
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const css = readFileSync(new URL('../src/app.css', import.meta.url), 'utf8');

function palette(block: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of block.matchAll(/--([a-z-]+):\s*(#[0-9a-fA-F]{6});/g)) {
    out[m[1] as string] = (m[2] as string).toLowerCase();
  }
  return out;
}

const lightBlock = css.slice(css.indexOf(':root {'), css.indexOf('}', css.indexOf(':root {')));
const darkStart = css.indexOf('@media (prefers-color-scheme: dark)');
const darkBlock = css.slice(darkStart, css.indexOf('}', css.indexOf(':root {', darkStart)));

const light = palette(lightBlock);
const dark = { ...light, ...palette(darkBlock) };

function luminance(hex: string): number {
  const channel = (i: number) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
}

export function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/** [foreground, background] for text: 4.5:1. */
const TEXT: [string, string][] = [
  ['text', 'bg'],
  ['text', 'surface'],
  ['text', 'binding-bg'],
  ['text', 'code-bg'],
  ['muted', 'bg'],
  ['muted', 'surface'],
  ['primary', 'bg'],
  ['primary', 'surface'],
  ['on-primary', 'primary'],
  ['on-danger', 'danger'],
  ['success', 'bg'],
  ['success', 'surface'],
  ['warn', 'bg'],
  ['warn', 'surface'],
  ['danger', 'bg'],
  ['danger', 'surface'],
];

/** Borders of controls, focus rings, state borders: 3:1. */
const NON_TEXT: [string, string][] = [
  ['border', 'bg'],
  ['border', 'surface'],
  ['border', 'binding-bg'],
  ['focus', 'bg'],
  ['focus', 'surface'],
  ['danger', 'bg'],
  ['success', 'bg'],
];

describe.each([
  ['light', light],
  ['dark', dark],
])('%s scheme', (_name, colours) => {
  it('defines every colour it uses', () => {
    for (const [fg, bg] of [...TEXT, ...NON_TEXT]) {
      expect(colours[fg], fg).toMatch(/^#[0-9a-f]{6}$/);
      expect(colours[bg], bg).toMatch(/^#[0-9a-f]{6}$/);
    }
  });

  it.each(TEXT)('text %s on %s reaches 4.5:1', (fg, bg) => {
    expect(contrast(colours[fg] as string, colours[bg] as string)).toBeGreaterThanOrEqual(4.5);
  });

  it.each(NON_TEXT)('%s on %s reaches 3:1', (fg, bg) => {
    expect(contrast(colours[fg] as string, colours[bg] as string)).toBeGreaterThanOrEqual(3);
  });
});

it('the contrast formula is right (black on white is 21:1)', () => {
  expect(contrast('#000000', '#ffffff')).toBeCloseTo(21, 5);
  expect(contrast('#777777', '#ffffff')).toBeCloseTo(4.48, 2);
});

it('the dark scheme really differs from the light one', () => {
  expect(dark.bg).not.toBe(light.bg);
  expect(Object.keys(palette(darkBlock)).length).toBeGreaterThan(10);
});
