import { describe, expect, it } from 'vitest';
import { render, screen, waitFor } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import App from '../src/App.svelte';
import type { WalletStatus } from '../src/lib/api';
import {
  ENROLLED,
  NOT_ENROLLED,
  deferred,
  failure,
  lockedStatus,
  mockBackend,
  pending,
  requestView,
} from './backend';

const $ = (selector: string) => document.querySelector<HTMLElement>(selector);
const LINK = 'countersign://enroll?server=https%3A%2F%2Fcs.example&invitation=inv_1';

describe('Unlock, first run', () => {
  it('asks for a new passphrase twice, before anything else', async () => {
    const backend = mockBackend({ wallet_status: () => lockedStatus(true) });
    render(App);
    await screen.findByRole('heading', { level: 1, name: 'Choose a passphrase' });
    expect(document.body.textContent).toContain('cannot be recovered');
    const input = screen.getByLabelText('Passphrase') as HTMLInputElement;
    expect(input.id).toBe('passphrase');
    expect(input.type).toBe('password');
    expect(input.getAttribute('autocomplete')).toBe('new-password');
    const repeat = screen.getByLabelText('Repeat the passphrase') as HTMLInputElement;
    expect(repeat.id).toBe('passphrase-confirm');
    expect(repeat.type).toBe('password');
    expect(repeat.getAttribute('autocomplete')).toBe('new-password');
    expect($('#unlock')?.textContent).toBe('Create wallet');
    expect($('nav')).toBeNull();
    expect($('#enroll-uri')).toBeNull();
    expect(backend.callsTo('start_live')).toHaveLength(0);
  });

  it('refuses a mismatch or a short passphrase without calling the backend', async () => {
    const user = userEvent.setup();
    const backend = mockBackend({ wallet_status: () => lockedStatus(true) });
    render(App);
    await user.type(await screen.findByLabelText('Passphrase'), 'correct horse');
    await user.type(screen.getByLabelText('Repeat the passphrase'), 'correct hose');
    await user.click(screen.getByRole('button', { name: 'Create wallet' }));
    const alert = await screen.findByRole('alert');
    expect(alert.id).toBe('unlock-error');
    expect(alert.textContent).toContain('do not match');

    await user.clear(screen.getByLabelText('Passphrase'));
    await user.type(screen.getByLabelText('Passphrase'), 'short');
    await user.clear(screen.getByLabelText('Repeat the passphrase'));
    await user.type(screen.getByLabelText('Repeat the passphrase'), 'short');
    await user.click(screen.getByRole('button', { name: 'Create wallet' }));
    await waitFor(() => expect($('#unlock-error')?.textContent).toContain('at least 8 characters'));
    expect(backend.callsTo('unlock')).toHaveLength(0);
  });

  it('creates the wallet with the passphrase, waiting, then opens Enroll', async () => {
    const user = userEvent.setup();
    const opened = deferred<WalletStatus>();
    const backend = mockBackend({
      wallet_status: () => lockedStatus(true),
      unlock: () => opened.promise,
    });
    render(App);
    await user.type(await screen.findByLabelText('Passphrase'), 'correct horse');
    await user.type(screen.getByLabelText('Repeat the passphrase'), 'correct horse');
    await user.click(screen.getByRole('button', { name: 'Create wallet' }));

    await waitFor(() => expect(backend.callsTo('unlock')).toHaveLength(1));
    expect(backend.callsTo('unlock')[0]?.args).toEqual({ passphrase: 'correct horse' });
    await waitFor(() => expect($('#unlock-progress')?.textContent).toBe('Unlocking…'));
    expect(($('#unlock') as HTMLButtonElement).disabled).toBe(true);
    await user.click($('#unlock') as HTMLElement);
    expect(backend.callsTo('unlock')).toHaveLength(1);

    opened.resolve(NOT_ENROLLED);
    await screen.findByLabelText('Invitation link');
    expect(backend.callsTo('start_live')).toHaveLength(0);
  });
});

describe('Unlock', () => {
  it('opens the wallet, then the inbox and the live channel', async () => {
    const user = userEvent.setup();
    const backend = mockBackend({
      wallet_status: () => lockedStatus(),
      unlock: () => ENROLLED,
      start_live: () => null,
      pending_requests: () => [],
    });
    render(App);
    await screen.findByRole('heading', { level: 1, name: 'Unlock your wallet' });
    const input = screen.getByLabelText('Passphrase') as HTMLInputElement;
    expect(input.id).toBe('passphrase');
    expect(input.getAttribute('autocomplete')).toBe('current-password');
    expect($('#passphrase-confirm')).toBeNull();
    expect($('#unlock')?.textContent).toBe('Unlock');
    expect($('nav')).toBeNull();

    await user.type(input, 'correct horse');
    await user.click(screen.getByRole('button', { name: 'Unlock' }));
    await screen.findByRole('heading', { level: 1, name: 'Inbox' });
    expect(backend.callsTo('unlock')[0]?.args).toEqual({ passphrase: 'correct horse' });
    await waitFor(() => expect(backend.callsTo('start_live')).toHaveLength(1));
    expect($('nav')).not.toBeNull();
  });

  it('says when the passphrase is wrong, and stays', async () => {
    const user = userEvent.setup();
    mockBackend({
      wallet_status: () => lockedStatus(),
      unlock: () => failure('wrong_passphrase', 'that passphrase does not open this wallet'),
    });
    render(App);
    await user.type(await screen.findByLabelText('Passphrase'), 'not it at all');
    await user.click(screen.getByRole('button', { name: 'Unlock' }));
    const alert = await screen.findByRole('alert');
    expect(alert.id).toBe('unlock-error');
    expect(alert.textContent).toBe('That passphrase does not open this wallet.');
    expect(($('#unlock') as HTMLButtonElement).disabled).toBe(false);
    expect(screen.getByRole('heading', { level: 1 }).textContent).toBe('Unlock your wallet');
  });

  it('shows the backend’s words for a weak passphrase', async () => {
    const user = userEvent.setup();
    mockBackend({
      wallet_status: () => lockedStatus(true),
      unlock: () => failure('weak_passphrase', 'choose a passphrase of at least 8 characters'),
    });
    render(App);
    await user.type(await screen.findByLabelText('Passphrase'), 'ééééééééé');
    await user.type(screen.getByLabelText('Repeat the passphrase'), 'ééééééééé');
    await user.click(screen.getByRole('button', { name: 'Create wallet' }));
    expect((await screen.findByRole('alert')).textContent).toBe(
      'Choose a passphrase of at least 8 characters.',
    );
  });

  it('keeps an enrollment link that arrived while locked for after unlocking', async () => {
    const user = userEvent.setup();
    const backend = mockBackend({
      wallet_status: () => lockedStatus(),
      unlock: () => NOT_ENROLLED,
      enrollment_preview: () => ({
        server: 'https://cs.example',
        subject: 'alice@example.com',
        name: 'Alice Martin',
        rp_id: 'cs.example',
      }),
    });
    render(App);
    await screen.findByRole('heading', { level: 1, name: 'Unlock your wallet' });
    await backend.emit('wallet://deep-link', { uri: LINK });
    expect(screen.getByRole('heading', { level: 1 }).textContent).toBe('Unlock your wallet');
    expect(backend.callsTo('enrollment_preview')).toHaveLength(0);

    await user.type(screen.getByLabelText('Passphrase'), 'correct horse');
    await user.click(screen.getByRole('button', { name: 'Unlock' }));
    await screen.findByRole('heading', { name: 'Check before you enroll' });
    expect(backend.callsTo('enrollment_preview')[0]?.args).toEqual({ uri: LINK });
  });

  it('goes back to Unlock when a command answers locked mid-session', async () => {
    const user = userEvent.setup();
    let sealed = false;
    const backend = mockBackend({
      wallet_status: () => ENROLLED,
      start_live: () => null,
      pending_requests: () => (sealed ? failure('locked') : [pending()]),
      unlock: () => {
        sealed = false;
        return ENROLLED;
      },
    });
    render(App);
    await screen.findByRole('button', { name: /^Review:/ });
    await waitFor(() => expect(backend.callsTo('start_live')).toHaveLength(1));

    sealed = true;
    await backend.emit('wallet://resync');
    await screen.findByRole('heading', { level: 1, name: 'Unlock your wallet' });
    expect($('#unlock-relocked')).not.toBeNull();
    expect($('nav')).toBeNull();
    expect($('#live-status')?.textContent).toBe('Not connected');

    await user.type(screen.getByLabelText('Passphrase'), 'correct horse');
    await user.click(screen.getByRole('button', { name: 'Unlock' }));
    await screen.findByRole('button', { name: /^Review:/ });
    await waitFor(() => expect(backend.callsTo('start_live')).toHaveLength(2));
  });

  it('goes back to Unlock when approving answers locked', async () => {
    const user = userEvent.setup();
    mockBackend({
      wallet_status: () => ENROLLED,
      start_live: () => null,
      pending_requests: () => [pending()],
      show_request: () => requestView(),
      approve_request: () => failure('locked'),
    });
    render(App);
    await user.click(await screen.findByRole('button', { name: /^Review:/ }));
    await user.click(await screen.findByRole('button', { name: 'Approve' }));
    await screen.findByRole('heading', { level: 1, name: 'Unlock your wallet' });
    expect($('#approve')).toBeNull();
  });
});
