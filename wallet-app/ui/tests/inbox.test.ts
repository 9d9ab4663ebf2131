import { describe, expect, it } from 'vitest';
import { render, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import App from '../src/App.svelte';
import type { PendingRequest } from '../src/lib/api';
import { ENROLLED, NOW, failure, mockBackend, pending } from './backend';

function inboxBackend(list: () => PendingRequest[]) {
  return mockBackend({
    wallet_status: () => ENROLLED,
    start_live: () => null,
    pending_requests: list,
  });
}

describe('Inbox', () => {
  it('lists pending requests with agent, action, age and a countdown', async () => {
    inboxBackend(() => [pending()]);
    render(App);
    const item = await screen.findByRole('button', {
      name: 'Review: Procurement agent requests purchase order',
    });
    const li = item.closest('li');
    expect(li?.dataset.requestId).toBe('req_1');
    expect(li?.parentElement?.id).toBe('inbox');
    expect(item.textContent).toContain('Procurement agent');
    expect(item.textContent).toContain('purchase order');
    expect(item.textContent).toContain('2 minutes ago');
    expect(item.querySelector('.countdown')?.textContent).toMatch(/^expires in 1:4\d$/);
  });

  it('counts down every second and says when a request expired', async () => {
    inboxBackend(() => [pending({ expires_at: NOW() + 2 })]);
    render(App);
    const countdown = await waitFor(() => {
      const el = document.querySelector('#inbox .countdown');
      if (!el) throw new Error('no countdown yet');
      return el;
    });
    expect(countdown.textContent).toMatch(/^expires in 0:0[12]$/);
    await waitFor(() => expect(countdown.textContent).toBe('expired'), { timeout: 4000 });
  });

  it('shows the empty state', async () => {
    inboxBackend(() => []);
    render(App);
    const empty = await screen.findByText(
      'Nothing waits for you. Requests from your agents appear here as they arrive.',
    );
    expect(empty.id).toBe('inbox-empty');
    expect(document.querySelectorAll('#inbox li')).toHaveLength(0);
  });

  it('refreshes when a wallet://request event arrives', async () => {
    let list = [pending()];
    const backend = inboxBackend(() => list);
    render(App);
    await screen.findByRole('button', { name: /Review: Procurement agent/ });
    list = [...list, pending({ id: 'req_2', agent: 'Deploy bot', action: 'deploy' })];
    await backend.emit('wallet://request', { request_id: 'req_2' });
    await screen.findByRole('button', { name: 'Review: Deploy bot requests deploy' });
    expect(document.querySelectorAll('#inbox li')).toHaveLength(2);
  });

  it('refreshes when a wallet://resync event arrives', async () => {
    let list = [pending()];
    const backend = inboxBackend(() => list);
    render(App);
    await screen.findByRole('button', { name: /Review: Procurement agent/ });
    list = [];
    await backend.emit('wallet://resync');
    await screen.findByText(/Nothing waits for you/);
  });

  it('refreshes with the Refresh button', async () => {
    const user = userEvent.setup();
    let list: PendingRequest[] = [];
    const backend = inboxBackend(() => list);
    render(App);
    await screen.findByText(/Nothing waits for you/);
    list = [pending({ action: null })];
    await user.click(screen.getByRole('button', { name: 'Refresh' }));
    const item = await screen.findByRole('button', { name: 'Review: request from Procurement agent' });
    expect(within(item).getByText('No action given')).toBeTruthy();
    expect(backend.callsTo('pending_requests')).toHaveLength(2);
  });

  it('puts the request that expires first at the top', async () => {
    inboxBackend(() => [
      pending({ id: 'late', expires_at: NOW() + 900 }),
      pending({ id: 'soon', expires_at: NOW() + 30 }),
    ]);
    render(App);
    await screen.findAllByRole('button', { name: /Review:/ });
    const ids = [...document.querySelectorAll<HTMLElement>('#inbox li')].map((li) => li.dataset.requestId);
    expect(ids).toEqual(['soon', 'late']);
  });

  it('keeps what it had and says why when a refresh fails', async () => {
    let fail = false;
    const backend = inboxBackend(() => (fail ? failure('network') : [pending()]));
    render(App);
    await screen.findByRole('button', { name: /Review: Procurement agent/ });
    fail = true;
    await backend.emit('wallet://resync');
    expect((await screen.findByRole('alert')).textContent).toContain('Could not reach the server');
    expect(document.querySelectorAll('#inbox li')).toHaveLength(1);
  });
});
