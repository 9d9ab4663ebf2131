// A stand-in backend for looking at the screens in a plain browser (screenshots, design
// review): open the built page with `?mock=<scenario>`. It is bundled into dist/ but
// switches itself on only when the page has a `mock` parameter AND no Tauri runtime
// (`window.__TAURI_INTERNALS__`), so inside the app it never answers a single call.
//
// Scenarios: see MOCK_SCENARIOS below and README.md. Extra parameters:
//   platform=desktop|ios|android   what wallet_status reports (ios/android show "Scan QR code")
//   live=0                          the live channel reports "offline, retrying"
//
// The unlock scenarios open with the passphrase `correct horse`; any other is wrong.
// The first-run one accepts any passphrase of 8 characters or more.

import { mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import type {
  EnrollmentPreview,
  HistoryEntry,
  PendingRequest,
  Platform,
  RequestView,
  WalletStatus,
} from './lib/api';

export const MOCK_SCENARIOS = [
  'unlock',
  'unlock-first-run',
  'enroll',
  'enroll-preview',
  'inbox',
  'inbox-empty',
  'request',
  'request-unverified',
  'approved',
  'history',
  'settings',
] as const;

export type MockScenario = (typeof MOCK_SCENARIOS)[number];

const SERVER = 'https://countersign.example.com';
const SUBJECT = 'alice@example.com';
const INVITATION =
  'countersign://enroll?server=https%3A%2F%2Fcountersign.example.com&invitation=inv_5Jq2tWm8RzKc';
const DEVICE_JKT = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';
/** How long the fake passkey prompt "takes", so the waiting state can be seen. */
const PASSKEY_MS = 700;
/** How long the fake key derivation (Argon2 in the app) takes. */
const UNLOCK_MS = 900;
/** The passphrase that opens the `unlock` scenario's wallet. */
export const MOCK_PASSPHRASE = 'correct horse';
const MIN_PASSPHRASE = 8;

/** Which scenario the page asks for, or null when the mock must stay off. */
export function mockScenario(search: string, hasTauri: boolean): MockScenario | null {
  if (hasTauri) return null;
  const wanted = new URLSearchParams(search).get('mock');
  return (MOCK_SCENARIOS as readonly string[]).includes(wanted ?? '')
    ? (wanted as MockScenario)
    : null;
}

function base64url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A JWS-shaped sample (its signature is filler: nothing verifies it). */
function sampleEvidence(requestId: string, hash: string, decision: 'approve' | 'deny', iat: number) {
  const header = base64url(JSON.stringify({ alg: 'ES256', typ: 'countersign-approval+jwt' }));
  const claims = base64url(
    JSON.stringify({ request_id: requestId, transaction_hash: hash, decision, iat, jti: `jti-${iat}` }),
  );
  return `${header}.${claims}.MEUCIQDx3kP1oZ4rS9dV7nYt2Qm8bWc5hJfL0gAeRuNiKsTvYwIgB6pXq3Zr9sLmC4tDk1FhVn2oGj7aWe8yUi5Ob0Hc`;
}

interface Sample {
  pending: PendingRequest;
  view: RequestView;
}

function samples(now: number): Sample[] {
  const purchase: RequestView = {
    request_id: 'req_7f3a9c',
    agent: { client_id: 'agent-procurement', name: 'Procurement agent', owner: SUBJECT },
    approver: SUBJECT,
    action: 'purchase_order',
    authorization_details: [
      {
        type: 'purchase_order',
        vendor: 'Acme',
        amount: 1200,
        currency: 'USD',
        quantity: 4,
        item: 'Standing desk, oak',
        locations: ['https://erp.example.com/purchase-orders'],
        actions: ['create'],
        delivery_address: { city: 'Lyon', country: 'FR' },
      },
    ],
    binding_message: 'W4SCT-7Q',
    scope: 'purchase_orders:create',
    task_id: 'task_2026_1206_0142',
    requested_at: now - 95,
    expires_at: now + 102,
    credential_validity_secs: 900,
    policy_reason: 'Purchases over 1,000 USD need the owner’s approval.',
    risk_signals: [
      { code: 'new_vendor', description: 'First order to this vendor' },
      { code: 'amount_above_usual', level: 'medium', usual_max: 400 },
    ],
    transaction_hash: 'q1b7Gx2yZ0mNw8cV5rT3uK9pL4sD6fH1jA0eB7iO2Qw',
    signed_by: SERVER,
  };
  const deploy: RequestView = {
    request_id: 'req_2b91de',
    agent: { client_id: 'agent-deploy', name: 'Deploy bot', owner: SUBJECT },
    approver: SUBJECT,
    action: 'deploy',
    authorization_details: [
      {
        type: 'deploy',
        service: 'billing-api',
        version: '2.14.0',
        target_environment: 'production',
        locations: ['https://deploy.example.com/services/billing-api'],
      },
    ],
    binding_message: 'K9PLM-2D',
    scope: 'deploy',
    task_id: null,
    requested_at: now - 600,
    expires_at: now + 1500,
    credential_validity_secs: 3600,
    policy_reason: 'Production deploys need a human.',
    risk_signals: [],
    transaction_hash: 'Zr4kP0aQ7vB2nM9xC5wE1tY8uI3oL6sD0fG2hJ4kL7q',
    signed_by: SERVER,
  };
  const travel: RequestView = {
    request_id: 'req_9c04aa',
    agent: { client_id: 'agent-travel', name: 'Travel assistant', owner: SUBJECT },
    approver: SUBJECT,
    action: 'book_travel',
    authorization_details: [
      {
        type: 'book_travel',
        total: { value: '842.50', currency: 'EUR' },
        carrier: 'Rail Europe',
        refundable: false,
      },
    ],
    binding_message: 'T7XQA-4M',
    scope: 'travel:book',
    task_id: 'task_trip_lyon',
    requested_at: now - 7200,
    expires_at: now + 45,
    credential_validity_secs: 300,
    policy_reason: null,
    risk_signals: [],
    transaction_hash: 'Hn2bV6cX0zL8kJ4gF1dS7aP3oI9uY5tR2eW6qM0nB8v',
    signed_by: SERVER,
  };
  return [purchase, deploy, travel].map((view) => ({
    view,
    pending: {
      id: view.request_id,
      agent: view.agent.name,
      action: view.action,
      requested_at: view.requested_at,
      expires_at: view.expires_at,
    },
  }));
}

function pastDecisions(now: number): HistoryEntry[] {
  const entry = (
    requestId: string,
    decision: 'approve' | 'deny',
    ago: number,
    agent: string,
    action: string | null,
    binding: string | null,
    reason: string | null,
    hash: string,
  ): HistoryEntry => ({
    request_id: requestId,
    decision,
    decided_at: now - ago,
    agent,
    action,
    binding_message: binding,
    reason,
    transaction_hash: hash,
    evidence: sampleEvidence(requestId, hash, decision, now - ago),
    device_jkt: DEVICE_JKT,
  });
  return [
    entry('req_51c0e2', 'approve', 3_600, 'Procurement agent', 'purchase_order', 'M2RTK-9A', null, 'aX9v2Lq7Wc3bN0mZ5rT8kP1sD4fH6jU2eB7iO0yQ3wE'),
    entry('req_48aa17', 'deny', 86_400 + 1_800, 'Deploy bot', 'deploy', 'B8QWE-1Z', 'Not during the freeze', 'Lk3Jd8Fh1Gs5Aq0Wz7Xc2Vb9Nm4Qe6Rt1Yu8Io3Pa5S'),
    entry('req_3f9b02', 'approve', 3 * 86_400, 'Travel assistant', 'book_travel', null, null, 'Po9Iu8Yt7Re6Wq5As4Df3Gh2Jk1Lz0Xc9Vb8Nm7Qw6E'),
  ];
}

/** Clicks `selector` once it is on the page, like a person would. */
function clickWhenReady(selector: string, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const look = () => {
      const el = document.querySelector<HTMLElement>(selector);
      if (el && !(el as HTMLButtonElement).disabled) {
        el.click();
        resolve();
      } else if (Date.now() - started > timeoutMs) {
        reject(new Error(`dev mock: ${selector} never appeared`));
      } else {
        setTimeout(look, 50);
      }
    };
    look();
  });
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function reject(kind: string, message: string): never {
  throw { kind, message };
}

/**
 * Installs the mock backend when the page asks for a scenario and Tauri is absent.
 * Returns the scenario, or null when it did nothing.
 */
export function installDevMock(location: Pick<Location, 'search'> = window.location): MockScenario | null {
  const scenario = mockScenario(location.search, '__TAURI_INTERNALS__' in window);
  if (scenario === null) return null;

  const params = new URLSearchParams(location.search);
  const platformParam = params.get('platform');
  const locking = scenario === 'unlock' || scenario === 'unlock-first-run';
  // Phones never lock: the unlock scenarios are desktop ones.
  const platform: Platform =
    !locking && (platformParam === 'ios' || platformParam === 'android') ? platformParam : 'desktop';
  const passphraseSet = platform === 'desktop' ? true : null;
  const liveUp = params.get('live') !== '0';
  const now = Math.floor(Date.now() / 1000);

  const notEnrolled: WalletStatus = {
    locked: false,
    passphrase_set: passphraseSet,
    enrolled: false,
    platform,
    server: null,
    subject: null,
    name: null,
    device_id: null,
  };
  const enrolledStatus: WalletStatus = {
    locked: false,
    passphrase_set: passphraseSet,
    enrolled: true,
    platform,
    server: SERVER,
    subject: SUBJECT,
    name: 'Alice Martin',
    device_id: 'dev_01JF3K7Q9ZB4XW2M8N5R6T',
  };

  const sealed = (firstRun: boolean): WalletStatus => ({
    ...notEnrolled,
    locked: true,
    passphrase_set: !firstRun,
  });

  let status: WalletStatus =
    scenario === 'unlock'
      ? sealed(false)
      : scenario === 'unlock-first-run'
        ? sealed(true)
        : scenario === 'enroll' || scenario === 'enroll-preview'
          ? notEnrolled
          : enrolledStatus;
  const all = samples(now);
  let pending: Sample[] = scenario === 'inbox-empty' ? [] : all;
  const history: HistoryEntry[] = scenario === 'inbox-empty' ? [] : pastDecisions(now);
  let firstStatus = true;

  const find = (id: unknown): Sample =>
    pending.find((s) => s.pending.id === id) ??
    reject('already_decided', 'the request is no longer pending');

  const record = (sample: Sample, decision: 'approve' | 'deny', reason: string | null) => {
    const at = Math.floor(Date.now() / 1000);
    pending = pending.filter((s) => s !== sample);
    history.unshift({
      request_id: sample.view.request_id,
      decision,
      decided_at: at,
      agent: sample.view.agent.name,
      action: sample.view.action,
      binding_message: sample.view.binding_message,
      reason,
      transaction_hash: sample.view.transaction_hash,
      evidence: sampleEvidence(sample.view.request_id, sample.view.transaction_hash, decision, at),
      device_jkt: DEVICE_JKT,
    });
  };

  mockIPC(
    async (cmd, payload) => {
      const args = (payload ?? {}) as Record<string, unknown>;
      if (status.locked && cmd !== 'wallet_status' && cmd !== 'unlock') {
        reject('locked', 'the wallet is locked; enter its passphrase');
      }
      switch (cmd) {
        case 'unlock': {
          const passphrase = typeof args.passphrase === 'string' ? args.passphrase : '';
          if (!status.locked) return status;
          await delay(UNLOCK_MS);
          if (status.passphrase_set === false) {
            if ([...passphrase].length < MIN_PASSPHRASE) {
              reject('weak_passphrase', `choose a passphrase of at least ${MIN_PASSPHRASE} characters`);
            }
            status = notEnrolled;
          } else {
            if (passphrase !== MOCK_PASSPHRASE) {
              reject('wrong_passphrase', 'that passphrase does not open this wallet');
            }
            status = enrolledStatus;
          }
          return status;
        }
        case 'wallet_status':
          if (firstStatus && scenario === 'enroll-preview') {
            // As if the app had been opened from an invitation link.
            setTimeout(() => void emit('wallet://deep-link', { uri: INVITATION }), 0);
          }
          firstStatus = false;
          return status;
        case 'enrollment_preview': {
          const uri = String(args.uri ?? '');
          if (!uri.startsWith('countersign://enroll?')) {
            reject('invalid', 'not an enrollment link');
          }
          await delay(250);
          const preview: EnrollmentPreview = {
            server: SERVER,
            subject: SUBJECT,
            name: 'Alice Martin',
            rp_id: 'countersign.example.com',
          };
          return preview;
        }
        case 'enroll_confirm':
          await delay(PASSKEY_MS);
          status = enrolledStatus;
          return status;
        case 'enroll_cancel':
          return null;
        case 'scan_invitation':
          await delay(400);
          return { uri: INVITATION };
        case 'start_live':
          setTimeout(() => void emit('wallet://live', { connected: liveUp }), 300);
          return null;
        case 'pending_requests':
          return pending.map((s) => s.pending);
        case 'show_request': {
          await delay(150);
          if (scenario === 'request-unverified') {
            reject('unverified', 'the request object signature does not verify');
          }
          return find(args.id).view;
        }
        case 'approve_request': {
          const sample = find(args.id);
          await delay(PASSKEY_MS);
          record(sample, 'approve', null);
          return { request_id: sample.view.request_id, status: 'approved' };
        }
        case 'deny_request': {
          const sample = find(args.id);
          await delay(PASSKEY_MS);
          record(sample, 'deny', typeof args.reason === 'string' ? args.reason : null);
          return { request_id: sample.view.request_id, status: 'denied' };
        }
        case 'decision_history':
          return history;
        case 'remove_device':
          status = notEnrolled;
          pending = [];
          return null;
        default:
          return reject('invalid', `the dev mock has no command ${cmd}`);
      }
    },
    { shouldMockEvents: true },
  );

  // Walk to the screen the scenario shows, clicking like a person would.
  const first = all[0]?.pending.id ?? '';
  const drive = async () => {
    switch (scenario) {
      case 'request':
      case 'request-unverified':
        await clickWhenReady(`[data-request-id="${first}"] button`);
        break;
      case 'approved':
        await clickWhenReady(`[data-request-id="${first}"] button`);
        await clickWhenReady('#approve');
        break;
      case 'history':
        await clickWhenReady('#nav-history');
        break;
      case 'settings':
        await clickWhenReady('#nav-settings');
        break;
      default:
        break;
    }
  };
  drive().catch((error: unknown) => console.error(error));
  document.documentElement.dataset.mock = scenario;
  return scenario;
}
