// After `vite build`: fails when dist/ holds anything the app's CSP would block
// (`default-src 'self'; style-src 'self'; connect-src ipc: http://ipc.localhost`):
// inline scripts, inline styles, style attributes, inline event handlers, resources
// from another origin, or code that evaluates strings.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const dist = new URL('../dist/', import.meta.url).pathname;
const problems = [];

const html = readFileSync(join(dist, 'index.html'), 'utf8');
for (const tag of html.match(/<script\b[^>]*>/gi) ?? []) {
  if (!/\bsrc=/.test(tag)) problems.push(`index.html: inline script ${tag}`);
}
if (/<style\b/i.test(html)) problems.push('index.html: inline <style>');
if (/\sstyle\s*=/i.test(html)) problems.push('index.html: style attribute');
if (/\son[a-z]+\s*=/i.test(html)) problems.push('index.html: inline event handler');
for (const [, url] of html.matchAll(/\b(?:src|href)\s*=\s*"([^"]*)"/gi)) {
  if (/^(?:[a-z]+:)?\/\//i.test(url) || /^data:/i.test(url)) {
    problems.push(`index.html: resource not from the app itself: ${url}`);
  }
}

const assets = readdirSync(join(dist, 'assets'));
if (!assets.some((f) => /\.js$/.test(f))) problems.push('no JavaScript bundle in dist/assets');
if (!assets.some((f) => /\.css$/.test(f))) problems.push('no stylesheet in dist/assets');
for (const file of assets) {
  if (!/-[A-Za-z0-9_-]{8}\.(js|css)$/.test(file)) problems.push(`asset without a content hash: ${file}`);
  const text = readFileSync(join(dist, 'assets', file), 'utf8');
  if (file.endsWith('.js') && /\bnew Function\s*\(|[^.\w]eval\s*\(/.test(text)) {
    problems.push(`${file}: evaluates strings (blocked without 'unsafe-eval')`);
  }
  if (file.endsWith('.css') && /@import\s+url\(\s*["']?(https?:)?\/\//i.test(text)) {
    problems.push(`${file}: imports a stylesheet from another origin`);
  }
}

if (problems.length > 0) {
  console.error(`dist/ would break under the app's CSP:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`dist/ checked: index.html and ${assets.length} assets, nothing the CSP would block`);
