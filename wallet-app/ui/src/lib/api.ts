// The wallet's backend contract: the Tauri commands of wallet-app and what they return.
// Every call goes through `call`, so a rejection always reaches the screens as a
// `WalletError` with a `kind` they can act on.

import { invoke, type InvokeArgs } from '@tauri-apps/api/core';

/** Unix seconds. */
export type UnixSeconds = number;

export type Platform = 'desktop' | 'ios' | 'android';

export interface WalletStatus {
  /** A desktop wallet stays locked (its keys sealed) until its passphrase opens it. */
  locked: boolean;
  /** Desktops: whether a passphrase was chosen already. `null` on phones, which never lock. */
  passphrase_set: boolean | null;
  enrolled: boolean;
  platform: Platform;
  server: string | null;
  subject: string | null;
  name: string | null;
  device_id: string | null;
}

export interface EnrollmentPreview {
  server: string;
  subject: string;
  name: string;
  rp_id: string;
}

export interface PendingRequest {
  id: string;
  agent: string;
  /** The action type (`authorization_details[0].type`), e.g. `purchase_order`. */
  action: string | null;
  requested_at: UnixSeconds;
  expires_at: UnixSeconds;
}

export interface AgentSummary {
  client_id: string;
  name: string;
  /** The human who owns the agent (subject). */
  owner: string;
}

/** A JSON object as the agent sent it (RFC 9396 authorization details, risk signals). */
export type JsonObject = { [key: string]: unknown };

/** A request whose server signature the wallet has verified. */
export interface RequestView {
  request_id: string;
  agent: AgentSummary;
  approver: string;
  action: string | null;
  authorization_details: JsonObject[] | null;
  binding_message: string | null;
  scope: string;
  task_id: string | null;
  requested_at: UnixSeconds;
  expires_at: UnixSeconds;
  credential_validity_secs: number;
  policy_reason: string | null;
  risk_signals: JsonObject[];
  transaction_hash: string;
  signed_by: string;
}

export interface DecisionRecorded<S extends 'approved' | 'denied'> {
  request_id: string;
  status: S;
}

export interface HistoryEntry {
  request_id: string;
  decision: 'approve' | 'deny';
  decided_at: UnixSeconds;
  agent: string;
  action: string | null;
  binding_message: string | null;
  reason: string | null;
  transaction_hash: string;
  /** The approval, a compact JWS signed by the device key. */
  evidence: string;
  /** RFC 7638 thumbprint of the device key that signed it. */
  device_jkt: string;
}

/** The kinds of failure the backend reports. */
export const ERROR_KINDS = [
  'not_enrolled',
  'invalid',
  'refused',
  'network',
  'unverified',
  'expired',
  'already_decided',
  'cancelled',
  'storage',
  /** The wallet is sealed: only `wallet_status` and `unlock` work until it is opened. */
  'locked',
  'wrong_passphrase',
  'weak_passphrase',
  /** The device's keystore, device key or passkey provider failed (not a cancellation). */
  'platform',
] as const;

/**
 * `unknown` is the front end's own: a rejection that is not `{ kind, message }` (a
 * command missing from the backend, a permission the capability file does not grant).
 */
export type ErrorKind = (typeof ERROR_KINDS)[number] | 'unknown';

export class WalletError extends Error {
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, message: string) {
    super(message);
    this.name = 'WalletError';
    this.kind = kind;
  }
}

function isKnownKind(value: unknown): value is (typeof ERROR_KINDS)[number] {
  return typeof value === 'string' && (ERROR_KINDS as readonly string[]).includes(value);
}

/** Whatever `invoke` rejected with, as a `WalletError`. */
export function toWalletError(reason: unknown): WalletError {
  if (reason instanceof WalletError) return reason;
  if (typeof reason === 'object' && reason !== null) {
    const { kind, message } = reason as { kind?: unknown; message?: unknown };
    const text = typeof message === 'string' ? message : String(message ?? '');
    if (isKnownKind(kind)) return new WalletError(kind, text);
    if (reason instanceof Error) return new WalletError('unknown', reason.message);
    return new WalletError('unknown', text || JSON.stringify(reason));
  }
  return new WalletError('unknown', String(reason));
}

type LockedListener = () => void;
const lockedListeners = new Set<LockedListener>();

/**
 * Calls `listener` whenever a command rejects with `locked` (the wallet sealed itself
 * while the app ran), before that rejection reaches the caller. Returns the unsubscribe.
 */
export function onLocked(listener: LockedListener): () => void {
  lockedListeners.add(listener);
  return () => {
    lockedListeners.delete(listener);
  };
}

async function call<T>(command: string, args?: InvokeArgs): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (reason) {
    const error = toWalletError(reason);
    if (error.kind === 'locked') {
      for (const listener of [...lockedListeners]) listener();
    }
    throw error;
  }
}

export const walletStatus = () => call<WalletStatus>('wallet_status');

/**
 * Desktops: opens the sealed wallet with its passphrase, or on first run (no passphrase
 * set yet) seals a new one with it. Resolves to the unlocked status.
 */
export const unlock = (passphrase: string) => call<WalletStatus>('unlock', { passphrase });

export const enrollmentPreview = (uri: string) =>
  call<EnrollmentPreview>('enrollment_preview', { uri });

export const enrollConfirm = () => call<WalletStatus>('enroll_confirm', {});

export const enrollCancel = () => call<null>('enroll_cancel', {});

/** Mobile only: opens the camera and returns the invitation link of a QR code. */
export const scanInvitation = () => call<{ uri: string }>('scan_invitation');

export const pendingRequests = () => call<PendingRequest[]>('pending_requests');

export const showRequest = (id: string) => call<RequestView>('show_request', { id });

export const approveRequest = (id: string) =>
  call<DecisionRecorded<'approved'>>('approve_request', { id });

export const denyRequest = (id: string, reason: string | null) =>
  call<DecisionRecorded<'denied'>>('deny_request', { id, reason });

export const decisionHistory = () => call<HistoryEntry[]>('decision_history');

export const removeDevice = () => call<null>('remove_device');

export const startLive = () => call<null>('start_live');
