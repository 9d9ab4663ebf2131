import { describe, expect, it } from 'vitest';
import { render, screen, waitFor } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import App from '../src/App.svelte';
import type { RequestView } from '../src/lib/api';
import { ENROLLED, deferred, failure, mockBackend, pending, requestView, type Handler } from './backend';

const $ = (selector: string) => document.querySelector<HTMLElement>(selector);
const text = (selector: string) => $(selector)?.textContent?.replace(/\s+/g, ' ').trim();

/** Starts the app enrolled, with one pending request, and opens it. */
async function openRequest(handlers: Record<string, Handler> = {}) {
  const user = userEvent.setup();
  const backend = mockBackend({
    wallet_status: () => ENROLLED,
    start_live: () => null,
    pending_requests: () => [pending()],
    show_request: () => requestView(),
    ...handlers,
  });
  render(App);
  await user.click(
    await screen.findByRole('button', { name: 'Review: Procurement agent requests purchase order' }),
  );
  return { user, backend };
}

async function loaded() {
  await screen.findByRole('heading', { level: 1, name: 'Procurement agent' });
}

describe('Request', () => {
  it('shows a loading state, then the verified request', async () => {
    const view = deferred<RequestView>();
    const { backend } = await openRequest({ show_request: () => view.promise });
    expect(await screen.findByText("Checking the request's signature…")).toBeTruthy();
    expect($('#approve')).toBeNull();
    expect(backend.callsTo('show_request')[0]?.args).toEqual({ id: 'req_1' });
    view.resolve(requestView());
    await loaded();
  });

  it('shows vendor, amount, binding message, reason and who signed it', async () => {
    await openRequest();
    await loaded();
    expect(text('#request-agent')).toBe('Procurement agent, owned by alice@example.com');
    expect(text('#request-action')).toContain('purchase order');
    expect(text('#request-binding')).toContain('W4SCT-7Q');
    expect(text('#request-binding')).toContain('Check this matches what your agent shows.');

    const args = $('#request-arguments');
    expect(args?.tagName).toBe('DL');
    const pairs = [...(args?.querySelectorAll('div') ?? [])].map((row) => [
      row.querySelector('dt')?.textContent?.trim(),
      row.querySelector('dd')?.textContent?.trim(),
    ]);
    expect(pairs).toEqual([
      ['Type', 'Purchase order'],
      ['Vendor', 'Acme'],
      ['Amount', '$1,200.00'],
      ['Quantity', '4'],
      ['Cost centre', 'CC-204'],
    ]);

    expect(text('#request-validity')).toBe(
      'If you approve, the agent gets a credential valid for 15 minutes.',
    );
    expect(text('#request-expires')).toMatch(/^Expires in [45]:\d\d$/);
    expect(text('#request-reason')).toContain('Purchases over 1,000 USD need the owner’s approval.');
    expect(text('#request-reason')).toContain('New vendor: First order to this vendor');
    expect(text('#request-signed-by')).toBe('✓ Signed by https://countersign.example.com');
    expect(screen.getByRole('button', { name: 'Approve' }).id).toBe('approve');
    expect(screen.getByRole('button', { name: 'Deny' }).id).toBe('deny');
  });

  it('lists locations and keeps nested fields', async () => {
    await openRequest({
      show_request: () =>
        requestView({
          authorization_details: [
            {
              type: 'deploy',
              target_environment: 'production',
              locations: ['https://deploy.example.com/a', 'https://deploy.example.com/b'],
              rollout: { strategy: 'canary', percent: 10 },
            },
          ],
        }),
    });
    await loaded();
    const items = [...document.querySelectorAll('#request-arguments li')].map((li) => li.textContent);
    expect(items).toEqual(['https://deploy.example.com/a', 'https://deploy.example.com/b']);
    expect(text('#request-arguments')).toContain('Target environment');
    expect($('#request-arguments code')?.textContent).toBe(
      JSON.stringify({ strategy: 'canary', percent: 10 }, null, 2),
    );
  });

  it('shows the scope when the agent gave no details', async () => {
    await openRequest({ show_request: () => requestView({ authorization_details: null, action: null }) });
    await loaded();
    expect(text('#request-no-details')).toBe('The agent gave no details beyond its scope: purchase_orders:create');
    expect(text('#request-action')).toBe('Asks to: an action it did not name');
    expect(document.querySelectorAll('#request-arguments dt')).toHaveLength(0);
  });

  it('shows nothing of an unverified request and offers no approval', async () => {
    await openRequest({ show_request: () => failure('unverified', 'bad signature') });
    const alert = await screen.findByRole('alert');
    expect(alert.id).toBe('request-error');
    expect(alert.textContent).toBe(
      'This request could not be verified as coming from your server. It cannot be approved.',
    );
    expect($('#approve')).toBeNull();
    expect($('#deny')).toBeNull();
    for (const id of ['request-agent', 'request-action', 'request-binding', 'request-arguments', 'request-signed-by']) {
      expect($(`#${id}`), id).toBeNull();
    }
    expect(document.body.textContent).not.toContain('Acme');
    expect(screen.getByRole('button', { name: '‹ Back to inbox' }).id).toBe('request-back');
  });

  it('says when a request expired before it could be opened', async () => {
    await openRequest({ show_request: () => failure('expired') });
    expect((await screen.findByRole('alert')).textContent).toBe(
      'This request expired before it was decided. Nothing was approved.',
    );
    expect($('#approve')).toBeNull();
  });

  it('says when a request was already decided before it could be opened', async () => {
    await openRequest({
      show_request: () => failure('already_decided', 'the request is no longer pending'),
    });
    const alert = await screen.findByRole('alert');
    expect(alert.id).toBe('request-error');
    expect(alert.textContent).toBe(
      'This request was already decided (on another device or by another approver).',
    );
    expect($('#approve')).toBeNull();
    expect($('#deny')).toBeNull();
    expect(document.body.textContent).not.toContain('Acme');
  });

  it('approves with the request id, waiting for the passkey, and shows the result', async () => {
    const approval = deferred<unknown>();
    const { user, backend } = await openRequest({ approve_request: () => approval.promise });
    await loaded();
    await user.click(screen.getByRole('button', { name: 'Approve' }));

    expect(backend.callsTo('approve_request').map((c) => c.args)).toEqual([{ id: 'req_1' }]);
    expect(await screen.findByText('Confirm with your passkey…')).toBeTruthy();
    expect(($('#approve') as HTMLButtonElement).disabled).toBe(true);
    expect(($('#deny') as HTMLButtonElement).disabled).toBe(true);

    approval.resolve({ request_id: 'req_1', status: 'approved' });
    await waitFor(() =>
      expect(text('#decision-result')).toBe('Approved. Procurement agent received its credential.'),
    );
    expect($('#decision-result')?.getAttribute('role')).toBe('status');
    expect(document.activeElement?.id).toBe('decision-result');
    expect($('#decision-progress')).toBeNull();
    expect($('#request-expires')).toBeNull();
    expect(screen.getByRole('button', { name: 'Open the inbox' }).id).toBe('request-inbox');
    expect($('#approve')).toBeNull();
    expect(backend.callsTo('deny_request')).toHaveLength(0);
  });

  it('denies with the reason given', async () => {
    const { user, backend } = await openRequest({
      deny_request: () => ({ request_id: 'req_1', status: 'denied' }),
    });
    await loaded();
    await user.click(screen.getByRole('button', { name: 'Deny' }));
    await user.type(screen.getByLabelText('Reason (optional)'), 'Not this vendor');
    expect(backend.callsTo('deny_request')).toHaveLength(0);
    await user.click(screen.getByRole('button', { name: 'Deny request' }));

    await waitFor(() => expect(text('#decision-result')).toBe('Denied.'));
    expect(backend.callsTo('deny_request').map((c) => c.args)).toEqual([
      { id: 'req_1', reason: 'Not this vendor' },
    ]);
    expect(backend.callsTo('approve_request')).toHaveLength(0);
  });

  it('denies without a reason as null, and can go back from the deny form', async () => {
    const { user, backend } = await openRequest({
      deny_request: () => ({ request_id: 'req_1', status: 'denied' }),
    });
    await loaded();
    await user.click(screen.getByRole('button', { name: 'Deny' }));
    expect($('#deny-reason')).not.toBeNull();
    await user.click(screen.getByRole('button', { name: 'Go back' }));
    expect($('#deny-reason')).toBeNull();
    expect($('#approve')).not.toBeNull();
    await user.click(screen.getByRole('button', { name: 'Deny' }));
    await user.type(screen.getByLabelText('Reason (optional)'), '   ');
    await user.click(screen.getByRole('button', { name: 'Deny request' }));
    await waitFor(() => expect(text('#decision-result')).toBe('Denied.'));
    expect(backend.callsTo('deny_request')[0]?.args).toEqual({ id: 'req_1', reason: null });
  });

  it.each([
    ['expired', 'This request expired before it was decided. Nothing was approved.'],
    ['already_decided', 'This request was already decided (on another device or by another approver).'],
    [
      'network',
      'Could not reach the server. Your decision may not have been recorded: open the inbox to check; if the request is still there, decide again.',
    ],
  ])('a %s decision says so and leaves no button to press again', async (kind, message) => {
    const { user } = await openRequest({ approve_request: () => failure(kind) });
    await loaded();
    await user.click(screen.getByRole('button', { name: 'Approve' }));
    const alert = await screen.findByRole('alert');
    expect(alert.id).toBe('request-error');
    expect(alert.textContent).toBe(message);
    expect($('#approve')).toBeNull();
    expect($('#deny')).toBeNull();
    expect($('#decision-result')).toBeNull();
    expect($('#request-back')).not.toBeNull();
    expect($('#request-inbox')).not.toBeNull();
  });

  it('a cancelled passkey prompt sends nothing and brings the buttons back', async () => {
    const { user, backend } = await openRequest({ approve_request: () => failure('cancelled') });
    await loaded();
    await user.click(screen.getByRole('button', { name: 'Approve' }));
    expect((await screen.findByRole('alert')).textContent).toBe(
      'Passkey confirmation was cancelled. Nothing was sent.',
    );
    const approve = screen.getByRole('button', { name: 'Approve' }) as HTMLButtonElement;
    expect(approve.disabled).toBe(false);
    expect((screen.getByRole('button', { name: 'Deny' }) as HTMLButtonElement).disabled).toBe(false);
    expect(backend.callsTo('approve_request')).toHaveLength(1);
    expect($('#request-inbox')).toBeNull();
    expect($('#request-expires')).not.toBeNull();
  });

  it('a cancelled deny keeps the reason typed', async () => {
    const { user } = await openRequest({ deny_request: () => failure('cancelled') });
    await loaded();
    await user.click(screen.getByRole('button', { name: 'Deny' }));
    await user.type(screen.getByLabelText('Reason (optional)'), 'Too much');
    await user.click(screen.getByRole('button', { name: 'Deny request' }));
    await screen.findByRole('alert');
    expect((screen.getByLabelText('Reason (optional)') as HTMLTextAreaElement).value).toBe('Too much');
    expect((screen.getByRole('button', { name: 'Deny request' }) as HTMLButtonElement).disabled).toBe(false);
  });

  it('works from the keyboard alone', async () => {
    const { user, backend } = await openRequest({
      approve_request: () => ({ request_id: 'req_1', status: 'approved' }),
    });
    await loaded();
    const approve = screen.getByRole('button', { name: 'Approve' });
    for (let i = 0; i < 20 && document.activeElement !== approve; i += 1) await user.tab();
    expect(document.activeElement).toBe(approve);
    await user.keyboard('{Enter}');
    await waitFor(() => expect(text('#decision-result')).toMatch(/^Approved\./));
    expect(backend.callsTo('approve_request')).toHaveLength(1);
  });

  it('goes back to the inbox, which reloads', async () => {
    const { user, backend } = await openRequest();
    await loaded();
    await user.click(screen.getByRole('button', { name: '‹ Back to inbox' }));
    await screen.findByRole('heading', { name: 'Inbox' });
    expect(backend.callsTo('pending_requests')).toHaveLength(2);
  });
});
