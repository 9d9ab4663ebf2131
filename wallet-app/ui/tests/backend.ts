// A fake wallet backend for screen tests: Tauri's own IPC mock, with events.

import { mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import type {
  HistoryEntry,
  PendingRequest,
  RequestView,
  WalletStatus,
} from '../src/lib/api';

export type Handler = (args: Record<string, unknown>) => unknown;

export interface Call {
  cmd: string;
  args: Record<string, unknown>;
}

export const NOW = () => Math.floor(Date.now() / 1000);

export const ENROLLED: WalletStatus = {
  locked: false,
  passphrase_set: true,
  enrolled: true,
  platform: 'desktop',
  server: 'https://countersign.example.com',
  subject: 'alice@example.com',
  name: 'Alice Martin',
  device_id: 'dev_01TEST',
};

export const NOT_ENROLLED: WalletStatus = {
  locked: false,
  passphrase_set: true,
  enrolled: false,
  platform: 'desktop',
  server: null,
  subject: null,
  name: null,
  device_id: null,
};

/** A sealed desktop wallet; `firstRun`: no passphrase chosen yet. */
export function lockedStatus(firstRun = false): WalletStatus {
  return { ...NOT_ENROLLED, locked: true, passphrase_set: !firstRun };
}

export function pending(overrides: Partial<PendingRequest> = {}): PendingRequest {
  const now = NOW();
  return {
    id: 'req_1',
    agent: 'Procurement agent',
    action: 'purchase_order',
    requested_at: now - 120,
    expires_at: now + 102,
    ...overrides,
  };
}

export function requestView(overrides: Partial<RequestView> = {}): RequestView {
  const now = NOW();
  return {
    request_id: 'req_1',
    agent: { client_id: 'agent-procurement', name: 'Procurement agent', owner: 'alice@example.com' },
    approver: 'alice@example.com',
    action: 'purchase_order',
    authorization_details: [
      {
        type: 'purchase_order',
        vendor: 'Acme',
        amount: 1200,
        currency: 'USD',
        quantity: 4,
        cost_centre: 'CC-204',
      },
    ],
    binding_message: 'W4SCT-7Q',
    scope: 'purchase_orders:create',
    task_id: null,
    requested_at: now - 120,
    expires_at: now + 300,
    credential_validity_secs: 900,
    policy_reason: 'Purchases over 1,000 USD need the owner’s approval.',
    risk_signals: [{ code: 'new_vendor', description: 'First order to this vendor' }],
    transaction_hash: 'hash_abc123',
    signed_by: 'https://countersign.example.com',
    ...overrides,
  };
}

export function historyEntry(overrides: Partial<HistoryEntry> = {}): HistoryEntry {
  return {
    request_id: 'req_old',
    decision: 'approve',
    decided_at: NOW() - 3600,
    agent: 'Procurement agent',
    action: 'purchase_order',
    binding_message: 'M2RTK-9A',
    reason: null,
    transaction_hash: 'hash_old_777',
    evidence: 'eyJhbGciOiJFUzI1NiJ9.eyJkZWNpc2lvbiI6ImFwcHJvdmUifQ.c2lnbmF0dXJl',
    device_jkt: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs',
    ...overrides,
  };
}

/** A backend error as the Rust side serialises it. */
export function failure(kind: string, message = `${kind} (test)`): never {
  throw { kind, message };
}

/**
 * Installs the fake backend. Commands without a handler reject, so a screen calling
 * something unexpected fails its test.
 */
export function mockBackend(handlers: Record<string, Handler>) {
  const calls: Call[] = [];
  mockIPC(
    (cmd, payload) => {
      const args = (payload ?? {}) as Record<string, unknown>;
      calls.push({ cmd, args });
      const handler = handlers[cmd];
      if (!handler) return failure('invalid', `no mock for ${cmd}`);
      return handler(args);
    },
    { shouldMockEvents: true },
  );
  return {
    calls,
    callsTo: (cmd: string) => calls.filter((c) => c.cmd === cmd),
    emit: (event: string, payload?: unknown) => emit(event, payload),
  };
}

/** A promise to resolve or reject by hand, to look at a screen while a call is pending. */
export function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
