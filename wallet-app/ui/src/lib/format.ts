// Formatting for people: the fields of an action, amounts, durations, countdowns.
// Pure functions of their inputs (the locale and the current time are parameters) so
// they are tested without a DOM.

import type { JsonObject } from './api';

/** The language of the interface's own words (relative times, durations). */
export const UI_LANG = 'en';

/**
 * The person's locale for numbers, amounts and dates: the first of the browser's
 * languages that is a valid BCP 47 tag. Desktop WebKit under a POSIX `C` locale reports
 * the language `C`, which `Intl` refuses with a RangeError; such tags are skipped.
 */
export function userLocale(languages?: readonly string[]): string {
  const candidates =
    languages ??
    (typeof navigator !== 'undefined'
      ? [...(navigator.languages ?? []), navigator.language]
      : []);
  for (const tag of candidates) {
    if (!tag) continue;
    try {
      const [canonical] = Intl.getCanonicalLocales(tag);
      if (canonical) return canonical;
    } catch {
      // not a language tag (`C`): try the next
    }
  }
  return 'en-US';
}

// ---------------------------------------------------------------- labels

const ACRONYMS: Record<string, string> = {
  api: 'API',
  aws: 'AWS',
  dns: 'DNS',
  gcp: 'GCP',
  iban: 'IBAN',
  id: 'ID',
  ids: 'IDs',
  ip: 'IP',
  jwt: 'JWT',
  sku: 'SKU',
  ssh: 'SSH',
  uri: 'URI',
  url: 'URL',
  vat: 'VAT',
};

function words(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[\s_\-.]+/)
    .filter((w) => w.length > 0)
    .map((w) => w.toLowerCase());
}

/** `target_environment` → "Target environment", `maxAmount` → "Max amount", `vendor_id` → "Vendor ID". */
export function humanizeKey(key: string): string {
  const parts = words(key).map((w) => ACRONYMS[w] ?? w);
  if (parts.length === 0) return key;
  const first = parts[0] as string;
  parts[0] = first.charAt(0).toUpperCase() + first.slice(1);
  return parts.join(' ');
}

/** An action type for a sentence: `purchase_order` → "purchase order". */
export function humanizeAction(action: string): string {
  const parts = words(action).map((w) => ACRONYMS[w] ?? w);
  return parts.length > 0 ? parts.join(' ') : action;
}

// ---------------------------------------------------------------- amounts

const DECIMAL = /^-?\d+(\.\d+)?$/;

/** A number, or a decimal string such as "120.00", kept exact for Intl (no float rounding). */
function numeric(value: unknown): number | `${number}` | null {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && DECIMAL.test(value.trim())) return value.trim() as `${number}`;
  return null;
}

function isCurrencyCode(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Za-z]{3}$/.test(value);
}

/**
 * An amount in a currency, e.g. `1200`, `"USD"` → "$1,200.00" (en-US). `null` when the
 * amount is not a number or the currency is not an ISO 4217 code.
 */
export function formatMoney(amount: unknown, currency: unknown, locale: string): string | null {
  const value = numeric(amount);
  if (value === null || !isCurrencyCode(currency)) return null;
  try {
    const format = new Intl.NumberFormat(locale, {
      style: 'currency',
      currency: currency.toUpperCase(),
    });
    return format.format(value as number);
  } catch {
    return null;
  }
}

/** `{ value, currency }` or `{ amount, currency }` and nothing else. */
function moneyObject(value: unknown, locale: string): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const keys = Object.keys(value);
  if (keys.length !== 2 || !keys.includes('currency')) return null;
  const record = value as JsonObject;
  const amountKey = keys.find((k) => k === 'value' || k === 'amount');
  return amountKey ? formatMoney(record[amountKey], record.currency, locale) : null;
}

/** Keys whose number is an amount of money when the object has a `currency`. */
function isAmountKey(key: string): boolean {
  const parts = words(key);
  const last = parts[parts.length - 1];
  return last === 'amount' || last === 'total' || last === 'price' || last === 'cost';
}

// ---------------------------------------------------------------- fields of an action

export type FieldValue =
  | { kind: 'text'; text: string }
  | { kind: 'list'; items: string[] }
  | { kind: 'json'; text: string };

export interface DetailField {
  /** The key as the agent sent it. */
  key: string;
  label: string;
  value: FieldValue;
}

/** Fields people look at first, in this order; the rest follow in the order given. */
const LEADING_KEYS = [
  'type',
  'vendor',
  'amount',
  'quantity',
  'environment',
  'target_environment',
  'locations',
  'actions',
];

function text(value: string): FieldValue {
  return { kind: 'text', text: value };
}

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) ?? String(value);
}

function scalar(value: unknown): string | null {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (typeof value === 'boolean') return value ? 'Yes' : 'No';
  return null;
}

function formatValue(key: string, value: unknown, locale: string): FieldValue {
  if (key === 'type' && typeof value === 'string') {
    return text(humanizeKey(value));
  }
  if (key === 'quantity') {
    const n = numeric(value);
    if (n !== null) return text(new Intl.NumberFormat(locale).format(n as number));
  }
  const money = moneyObject(value, locale);
  if (money !== null) return text(money);
  if (Array.isArray(value)) {
    if (value.length === 0) return text('None');
    return { kind: 'list', items: value.map((item) => scalar(item) ?? json(item)) };
  }
  const plain = scalar(value);
  if (plain !== null) return text(plain);
  return { kind: 'json', text: json(value) };
}

/**
 * Every field of one authorization detail, labelled and formatted. Nothing is dropped:
 * a `currency` is shown inside the amounts it belongs to, or on its own row when none.
 */
export function describeDetail(detail: JsonObject, locale: string): DetailField[] {
  const keys = Object.keys(detail);
  const ordered = [
    ...LEADING_KEYS.filter((k) => keys.includes(k)),
    ...keys.filter((k) => !LEADING_KEYS.includes(k)),
  ];
  const currency = detail.currency;
  const amounts = isCurrencyCode(currency)
    ? ordered.filter(
        (k) => isAmountKey(k) && formatMoney(detail[k], currency, locale) !== null,
      )
    : [];
  const fields: DetailField[] = [];
  for (const key of ordered) {
    if (key === 'currency' && amounts.length > 0) continue;
    const value = detail[key];
    const formatted = amounts.includes(key)
      ? text(formatMoney(value, currency, locale) as string)
      : formatValue(key, value, locale);
    fields.push({ key, label: humanizeKey(key), value: formatted });
  }
  return fields;
}

/** One list of fields per authorization detail. */
export function describeDetails(
  details: readonly JsonObject[] | null,
  locale: string,
): DetailField[][] {
  if (!details) return [];
  return details.map((detail) =>
    typeof detail === 'object' && detail !== null && !Array.isArray(detail)
      ? describeDetail(detail, locale)
      : [{ key: '', label: 'Value', value: { kind: 'json', text: json(detail) } }],
  );
}

// ---------------------------------------------------------------- risk signals

const SIGNAL_TITLE_KEYS = ['code', 'type', 'name', 'signal', 'kind'];
const SIGNAL_TEXT_KEYS = ['description', 'message', 'detail', 'details', 'reason'];

/**
 * A risk signal as one line: "New vendor: first order to this vendor (Level: high)".
 * Unknown fields are kept as "Label: value".
 */
export function describeSignal(signal: JsonObject, locale: string): string {
  if (typeof signal !== 'object' || signal === null || Array.isArray(signal)) {
    return scalar(signal) ?? json(signal);
  }
  const titleKey = SIGNAL_TITLE_KEYS.find((k) => typeof signal[k] === 'string');
  const textKey = SIGNAL_TEXT_KEYS.find((k) => typeof signal[k] === 'string');
  const head = [
    titleKey ? humanizeKey(signal[titleKey] as string) : null,
    textKey ? (signal[textKey] as string) : null,
  ].filter((s): s is string => s !== null);
  const rest = Object.keys(signal)
    .filter((k) => k !== titleKey && k !== textKey)
    .map((k) => {
      const value = formatValue(k, signal[k], locale);
      const shown =
        value.kind === 'list' ? value.items.join(', ') : value.kind === 'json' ? JSON.stringify(signal[k]) : value.text;
      return `${humanizeKey(k)}: ${shown}`;
    });
  if (head.length === 0) return rest.join('; ');
  const main = head.join(': ');
  return rest.length > 0 ? `${main} (${rest.join('; ')})` : main;
}

// ---------------------------------------------------------------- time

function plural(n: number, unit: string): string {
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

/** 900 → "15 minutes", 5400 → "1 hour 30 minutes", 86400 → "1 day". */
export function formatDuration(totalSeconds: number): string {
  const secs = Math.max(0, Math.round(totalSeconds));
  const days = Math.floor(secs / 86400);
  const hours = Math.floor((secs % 86400) / 3600);
  const minutes = Math.floor((secs % 3600) / 60);
  const seconds = secs % 60;
  const parts = [
    days > 0 ? plural(days, 'day') : null,
    hours > 0 ? plural(hours, 'hour') : null,
    minutes > 0 ? plural(minutes, 'minute') : null,
    seconds > 0 ? plural(seconds, 'second') : null,
  ].filter((p): p is string => p !== null);
  return parts.length > 0 ? parts.join(' ') : '0 seconds';
}

/** Whole seconds left until `expiresAt`, counting a started second as left. */
export function secondsLeft(expiresAt: number, nowMs: number): number {
  return Math.ceil(expiresAt - nowMs / 1000);
}

/** 102 → "1:42", 3725 → "1:02:05". */
export function formatClock(totalSeconds: number): string {
  const secs = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(secs / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = String(secs % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** "expires in 1:42", or "expired" once no second is left. */
export function formatCountdown(remainingSeconds: number): string {
  return remainingSeconds > 0 ? `expires in ${formatClock(remainingSeconds)}` : 'expired';
}

/** "just now", "5 minutes ago", "yesterday" (in the interface's language). */
export function formatRelative(thenSeconds: number, nowMs: number): string {
  const diff = Math.round(thenSeconds - nowMs / 1000);
  const abs = Math.abs(diff);
  if (abs < 10) return 'just now';
  const rtf = new Intl.RelativeTimeFormat(UI_LANG, { numeric: 'auto' });
  if (abs < 60) return rtf.format(diff, 'second');
  if (abs < 3600) return rtf.format(Math.trunc(diff / 60), 'minute');
  if (abs < 86400) return rtf.format(Math.trunc(diff / 3600), 'hour');
  return rtf.format(Math.trunc(diff / 86400), 'day');
}

/** A local date and time, e.g. "Dec 6, 2026, 3:04 PM" (en-US). */
export function formatDateTime(seconds: number, locale: string, timeZone?: string): string {
  return new Intl.DateTimeFormat(locale, {
    dateStyle: 'medium',
    timeStyle: 'short',
    ...(timeZone ? { timeZone } : {}),
  }).format(new Date(seconds * 1000));
}
