import { describe, expect, it } from 'vitest';
import { render, screen, waitFor } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import App from '../src/App.svelte';
import { ENROLLED, NOT_ENROLLED, deferred, failure, mockBackend } from './backend';

const LINK = 'countersign://enroll?server=https%3A%2F%2Fcs.example&invitation=inv_1';
const PREVIEW = {
  server: 'https://cs.example',
  subject: 'alice@example.com',
  name: 'Alice Martin',
  rp_id: 'cs.example',
};

function enrollBackend(extra: Record<string, (args: Record<string, unknown>) => unknown> = {}) {
  return mockBackend({
    wallet_status: () => NOT_ENROLLED,
    enrollment_preview: () => PREVIEW,
    enroll_confirm: () => ENROLLED,
    enroll_cancel: () => null,
    start_live: () => null,
    pending_requests: () => [],
    ...extra,
  });
}

describe('Enroll', () => {
  it('opens when the device is not enrolled, without navigation', async () => {
    const backend = enrollBackend();
    render(App);
    expect(await screen.findByLabelText('Invitation link')).toBeTruthy();
    expect(document.querySelector('#enroll-uri')).not.toBeNull();
    expect(document.querySelector('#enroll-continue')?.textContent).toBe('Continue');
    expect(document.querySelector('nav')).toBeNull();
    expect(document.querySelector('#enroll-scan')).toBeNull(); // desktop
    expect(backend.callsTo('start_live')).toHaveLength(0);
  });

  it('shows server, name and subject before anything is created', async () => {
    const user = userEvent.setup();
    const backend = enrollBackend();
    render(App);
    await user.type(await screen.findByLabelText('Invitation link'), LINK);
    await user.click(screen.getByRole('button', { name: 'Continue' }));

    await screen.findByRole('heading', { name: 'Check before you enroll' });
    expect(backend.callsTo('enrollment_preview')[0]?.args).toEqual({ uri: LINK });
    expect(document.querySelector('#enroll-server')?.textContent).toBe('https://cs.example');
    expect(document.querySelector('#enroll-name')?.textContent).toBe('Alice Martin');
    expect(document.querySelector('#enroll-subject')?.textContent).toBe('alice@example.com');
    expect(document.querySelector('.lead')?.textContent?.replace(/\s+/g, ' ').trim()).toBe(
      'You are enrolling this device for Alice Martin (alice@example.com) on https://cs.example.',
    );
    expect(backend.callsTo('enroll_confirm')).toHaveLength(0);
  });

  it('enrolls on confirm, then opens the inbox and the live channel', async () => {
    const user = userEvent.setup();
    const confirm = deferred<unknown>();
    const backend = enrollBackend({ enroll_confirm: () => confirm.promise });
    render(App);
    await user.type(await screen.findByLabelText('Invitation link'), LINK);
    await user.click(screen.getByRole('button', { name: 'Continue' }));
    await user.click(await screen.findByRole('button', { name: 'Enroll this device' }));

    expect(backend.callsTo('enroll_confirm')).toEqual([{ cmd: 'enroll_confirm', args: {} }]);
    expect((document.querySelector('#enroll-confirm') as HTMLButtonElement).disabled).toBe(true);
    confirm.resolve(ENROLLED);

    await screen.findByRole('heading', { name: 'Inbox' });
    expect(document.querySelector('#nav-inbox')?.getAttribute('aria-current')).toBe('page');
    await waitFor(() => expect(backend.callsTo('start_live')).toHaveLength(1));
  });

  it('cancels: calls enroll_cancel and goes back to the link', async () => {
    const user = userEvent.setup();
    const backend = enrollBackend();
    render(App);
    await user.type(await screen.findByLabelText('Invitation link'), LINK);
    await user.click(screen.getByRole('button', { name: 'Continue' }));
    await user.click(await screen.findByRole('button', { name: 'Cancel' }));

    await waitFor(() => expect(backend.callsTo('enroll_cancel')).toHaveLength(1));
    expect((screen.getByLabelText('Invitation link') as HTMLTextAreaElement).value).toBe(LINK);
    expect(backend.callsTo('enroll_confirm')).toHaveLength(0);
  });

  it.each([
    ['invalid', 'This is not a valid invitation link.'],
    ['network', 'Could not reach the server named in the invitation.'],
    ['expired', 'This invitation has expired.'],
  ])('explains a %s invitation', async (kind, sentence) => {
    const user = userEvent.setup();
    enrollBackend({ enrollment_preview: () => failure(kind) });
    render(App);
    await user.type(await screen.findByLabelText('Invitation link'), 'countersign://enroll?x');
    await user.click(screen.getByRole('button', { name: 'Continue' }));
    const alert = await screen.findByRole('alert');
    expect(alert.id).toBe('enroll-error');
    expect(alert.textContent).toContain(sentence);
    expect(document.querySelector('#enroll-confirm')).toBeNull();
  });

  it('asks for a link before reading an empty one', async () => {
    const user = userEvent.setup();
    const backend = enrollBackend();
    render(App);
    await screen.findByLabelText('Invitation link');
    await user.click(screen.getByRole('button', { name: 'Continue' }));
    expect((await screen.findByRole('alert')).textContent).toBe('Paste the invitation link first.');
    expect(backend.callsTo('enrollment_preview')).toHaveLength(0);
  });

  it('keeps the preview when the passkey prompt is cancelled', async () => {
    const user = userEvent.setup();
    enrollBackend({ enroll_confirm: () => failure('cancelled') });
    render(App);
    await user.type(await screen.findByLabelText('Invitation link'), LINK);
    await user.click(screen.getByRole('button', { name: 'Continue' }));
    await user.click(await screen.findByRole('button', { name: 'Enroll this device' }));
    expect((await screen.findByRole('alert')).textContent).toContain('Passkey creation was cancelled');
    expect(screen.getByRole('button', { name: 'Enroll this device' })).toBeTruthy();
  });

  it('scans a QR code on a phone', async () => {
    const user = userEvent.setup();
    const backend = enrollBackend({
      wallet_status: () => ({ ...NOT_ENROLLED, platform: 'ios', passphrase_set: null }),
      scan_invitation: () => ({ uri: LINK }),
    });
    render(App);
    await user.click(await screen.findByRole('button', { name: 'Scan QR code' }));
    await screen.findByRole('heading', { name: 'Check before you enroll' });
    expect(backend.callsTo('enrollment_preview')[0]?.args).toEqual({ uri: LINK });
  });

  it('opens an enrollment link from a deep link and reads it', async () => {
    const backend = enrollBackend();
    render(App);
    await screen.findByLabelText('Invitation link');
    await backend.emit('wallet://deep-link', { uri: LINK });
    await screen.findByRole('heading', { name: 'Check before you enroll' });
    expect(backend.callsTo('enrollment_preview')[0]?.args).toEqual({ uri: LINK });
    expect(document.querySelector('#enroll-server')?.textContent).toBe('https://cs.example');
  });
});

describe('App shell', () => {
  it('shows the live channel state from wallet://live', async () => {
    const backend = mockBackend({
      wallet_status: () => ENROLLED,
      start_live: () => null,
      pending_requests: () => [],
    });
    render(App);
    await screen.findByRole('heading', { name: 'Inbox' });
    await waitFor(() => expect(backend.callsTo('start_live')).toHaveLength(1));
    await backend.emit('wallet://live', { connected: true });
    await waitFor(() => expect(document.querySelector('#live-status')?.textContent).toBe('Live'));
    await backend.emit('wallet://live', { connected: false });
    await waitFor(() =>
      expect(document.querySelector('#live-status')?.textContent).toBe('Offline, retrying'),
    );
  });

  it('marks the current screen in the navigation', async () => {
    const user = userEvent.setup();
    mockBackend({
      wallet_status: () => ENROLLED,
      start_live: () => null,
      pending_requests: () => [],
      decision_history: () => [],
    });
    render(App);
    await screen.findByRole('heading', { name: 'Inbox' });
    await user.click(screen.getByRole('button', { name: 'History' }));
    await screen.findByRole('heading', { name: 'History' });
    expect(document.querySelector('#nav-history')?.getAttribute('aria-current')).toBe('page');
    expect(document.querySelector('#nav-inbox')?.hasAttribute('aria-current')).toBe(false);
  });

  it('says so when the wallet cannot start, and retries', async () => {
    const user = userEvent.setup();
    let fail = true;
    mockBackend({
      wallet_status: () => (fail ? failure('storage') : NOT_ENROLLED),
    });
    render(App);
    expect((await screen.findByRole('alert')).textContent).toContain('could not read its own storage');
    fail = false;
    await user.click(screen.getByRole('button', { name: 'Try again' }));
    await screen.findByLabelText('Invitation link');
  });
});
