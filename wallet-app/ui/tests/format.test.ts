import { describe, expect, it } from 'vitest';
import {
  userLocale,
  describeDetail,
  describeDetails,
  describeSignal,
  formatMoney,
  humanizeAction,
  humanizeKey,
  type DetailField,
} from '../src/lib/format';

const L = 'en-US';

function rows(fields: DetailField[]): Record<string, unknown> {
  return Object.fromEntries(
    fields.map((f) => [
      f.label,
      f.value.kind === 'list' ? f.value.items : f.value.text,
    ]),
  );
}

describe('humanizeKey', () => {
  it.each([
    ['vendor', 'Vendor'],
    ['target_environment', 'Target environment'],
    ['maxAmount', 'Max amount'],
    ['vendor_id', 'Vendor ID'],
    ['callback-url', 'Callback URL'],
    ['cost_centre', 'Cost centre'],
    ['type', 'Type'],
  ])('%s → %s', (key, label) => {
    expect(humanizeKey(key)).toBe(label);
  });

  it('keeps a key it cannot split', () => {
    expect(humanizeKey('_')).toBe('_');
  });

  it('turns an action type into words', () => {
    expect(humanizeAction('purchase_order')).toBe('purchase order');
    expect(humanizeAction('deploy')).toBe('deploy');
  });
});

describe('formatMoney', () => {
  it('formats numbers and decimal strings in the currency', () => {
    expect(formatMoney(1200, 'USD', L)).toBe('$1,200.00');
    expect(formatMoney('120.00', 'EUR', L)).toBe('€120.00');
    expect(formatMoney(0.5, 'eur', 'de-DE')).toBe('0,50\u00a0€');
    expect(formatMoney('1200', 'JPY', L)).toBe('¥1,200');
  });

  it('keeps every digit of a long decimal string', () => {
    expect(formatMoney('12345678901234567.25', 'USD', L)).toBe('$12,345,678,901,234,567.25');
  });

  it('refuses what is not an amount in a currency', () => {
    expect(formatMoney('12 dollars', 'USD', L)).toBeNull();
    expect(formatMoney(12, 'dollars', L)).toBeNull();
    expect(formatMoney(Number.NaN, 'USD', L)).toBeNull();
    expect(formatMoney(null, 'USD', L)).toBeNull();
  });
});

describe('describeDetail', () => {
  it('shows a purchase order for people, amount in its currency', () => {
    const fields = describeDetail(
      { type: 'purchase_order', vendor: 'Acme', amount: 1200, currency: 'USD', quantity: 1500 },
      L,
    );
    expect(rows(fields)).toEqual({
      Type: 'Purchase order',
      Vendor: 'Acme',
      Amount: '$1,200.00',
      Quantity: '1,500',
    });
  });

  it('puts the fields people look at first, in a fixed order', () => {
    const fields = describeDetail(
      { actions: ['read'], zeta: 1, vendor: 'Acme', type: 't', alpha: 2 },
      L,
    );
    expect(fields.map((f) => f.key)).toEqual(['type', 'vendor', 'actions', 'zeta', 'alpha']);
  });

  it('formats an amount given as a string', () => {
    expect(rows(describeDetail({ amount: '120.00', currency: 'EUR' }, L))).toEqual({
      Amount: '€120.00',
    });
  });

  it('formats an amount given as an object {value, currency} under any key', () => {
    expect(rows(describeDetail({ total: { value: '842.50', currency: 'EUR' } }, L))).toEqual({
      Total: '€842.50',
    });
    expect(rows(describeDetail({ amount: { amount: 99, currency: 'GBP' } }, L))).toEqual({
      Amount: '£99.00',
    });
  });

  it('formats every amount-like field of an object with a currency', () => {
    expect(
      rows(describeDetail({ unit_price: 25, total_amount: '100', currency: 'USD' }, L)),
    ).toEqual({ 'Unit price': '$25.00', 'Total amount': '$100.00' });
  });

  it('keeps the currency on its own row when no amount uses it', () => {
    expect(rows(describeDetail({ amount: 'lots', currency: 'USD' }, L))).toEqual({
      Amount: 'lots',
      Currency: 'USD',
    });
    expect(rows(describeDetail({ vendor: 'Acme', currency: 'USD' }, L))).toEqual({
      Vendor: 'Acme',
      Currency: 'USD',
    });
  });

  it('shows an amount without a currency as it came', () => {
    expect(rows(describeDetail({ amount: 1200 }, L))).toEqual({ Amount: '1200' });
  });

  it('lists locations and actions', () => {
    const fields = describeDetail(
      {
        locations: ['https://erp.example.com/po', 'https://erp.example.com/vendors'],
        actions: ['create', 'read'],
        target_environment: 'production',
      },
      L,
    );
    expect(fields.map((f) => f.value)).toEqual([
      { kind: 'text', text: 'production' },
      { kind: 'list', items: ['https://erp.example.com/po', 'https://erp.example.com/vendors'] },
      { kind: 'list', items: ['create', 'read'] },
    ]);
    expect(fields[0]?.label).toBe('Target environment');
  });

  it('keeps unknown fields, with readable labels and values', () => {
    const fields = describeDetail(
      { cost_centre: 'CC-204', urgent: true, approved_before: false, note: null, count: 3, empty: [] },
      L,
    );
    expect(rows(fields)).toEqual({
      'Cost centre': 'CC-204',
      Urgent: 'Yes',
      'Approved before': 'No',
      Note: 'None',
      Count: '3',
      Empty: 'None',
    });
  });

  it('shows nested objects as JSON text, never dropping them', () => {
    const nested = { city: 'Lyon', geo: { lat: 45.76, lon: 4.83 } };
    const [field] = describeDetail({ delivery_address: nested }, L);
    expect(field?.label).toBe('Delivery address');
    expect(field?.value).toEqual({ kind: 'json', text: JSON.stringify(nested, null, 2) });
    const [list] = describeDetail({ lines: [{ sku: 'A1', qty: 2 }, 'loose'] }, L);
    expect(list?.value).toEqual({
      kind: 'list',
      items: [JSON.stringify({ sku: 'A1', qty: 2 }, null, 2), 'loose'],
    });
  });

  it('has one row per field of the input, except a currency shown inside its amount', () => {
    const detail = {
      type: 'x',
      vendor: 'v',
      amount: 1,
      currency: 'USD',
      a: 1,
      b: 'two',
      c: [3],
      d: { e: 4 },
      f: null,
    };
    const keys = describeDetail(detail, L).map((f) => f.key);
    expect(keys.sort()).toEqual(Object.keys(detail).filter((k) => k !== 'currency').sort());
  });
});

describe('describeDetails', () => {
  it('gives one group per detail and nothing for null', () => {
    expect(describeDetails(null, L)).toEqual([]);
    const groups = describeDetails([{ type: 'a' }, { type: 'b', vendor: 'Acme' }], L);
    expect(groups.map((g) => g.length)).toEqual([1, 2]);
  });
});

describe('describeSignal', () => {
  it('reads a coded signal with its description', () => {
    expect(describeSignal({ code: 'new_vendor', description: 'First order to this vendor' }, L)).toBe(
      'New vendor: First order to this vendor',
    );
  });

  it('keeps the other fields of a signal', () => {
    expect(describeSignal({ code: 'amount_above_usual', level: 'medium', usual_max: 400 }, L)).toBe(
      'Amount above usual (Level: medium; Usual max: 400)',
    );
    expect(describeSignal({ score: 0.9, tags: ['a', 'b'] }, L)).toBe('Score: 0.9; Tags: a, b');
  });
});

describe('userLocale', () => {
  it('skips tags Intl refuses, such as the POSIX C locale desktop WebKit reports', () => {
    expect(userLocale(['C'])).toBe('en-US');
    expect(userLocale(['C', 'fr-FR'])).toBe('fr-FR');
    expect(userLocale(['C', ''])).toBe('en-US');
  });

  it('keeps a valid tag, canonicalised', () => {
    expect(userLocale(['de-de'])).toBe('de-DE');
    expect(() => new Intl.NumberFormat(userLocale(['C']))).not.toThrow();
  });
});
