import { describe, expect, it } from 'vitest';
import { render, screen, waitFor } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import App from '../src/App.svelte';
import type { HistoryEntry } from '../src/lib/api';
import { ENROLLED, failure, historyEntry, mockBackend, type Handler } from './backend';

async function start(handlers: Record<string, Handler>) {
  const user = userEvent.setup();
  const backend = mockBackend({
    wallet_status: () => ENROLLED,
    start_live: () => null,
    pending_requests: () => [],
    ...handlers,
  });
  render(App);
  await screen.findByRole('heading', { name: 'Inbox' });
  return { user, backend };
}

describe('History', () => {
  it('lists decisions with their signed evidence', async () => {
    const entries: HistoryEntry[] = [
      historyEntry(),
      historyEntry({
        request_id: 'req_denied',
        decision: 'deny',
        agent: 'Deploy bot',
        action: 'deploy',
        reason: 'Not during the freeze',
        binding_message: null,
      }),
    ];
    const { user } = await start({ decision_history: () => entries });
    await user.click(screen.getByRole('button', { name: 'History' }));
    await screen.findByRole('heading', { name: 'History' });

    const items = [...document.querySelectorAll<HTMLElement>('#history > li')];
    expect(items.map((li) => li.dataset.requestId)).toEqual(['req_old', 'req_denied']);
    const [approved, denied] = items as [HTMLElement, HTMLElement];
    expect(approved.textContent).toContain('Procurement agent');
    expect(approved.textContent).toContain('Approved');
    expect(approved.textContent).toContain('purchase order');
    expect(approved.textContent).toContain('M2RTK-9A');
    expect(approved.querySelector('time')?.getAttribute('datetime')).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(denied.textContent).toContain('Denied');
    expect(denied.textContent).toContain('Reason: Not during the freeze');

    const details = approved.querySelector('details');
    expect(details?.open).toBe(false);
    const summary = details?.querySelector('summary') as HTMLElement;
    await user.click(summary);
    expect(details?.open).toBe(true);
    expect(details?.querySelector('code')?.textContent).toBe(entries[0]?.evidence);
    expect(details?.textContent).toContain('hash_old_777');
    expect(details?.textContent).toContain('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
  });

  it('has an empty state', async () => {
    const { user } = await start({ decision_history: () => [] });
    await user.click(screen.getByRole('button', { name: 'History' }));
    expect((await screen.findByText(/No decisions yet/)).id).toBe('history-empty');
  });
});

describe('Settings', () => {
  it('shows the enrollment and removes the device only after confirmation', async () => {
    const { user, backend } = await start({ remove_device: () => null });
    await user.click(screen.getByRole('button', { name: 'Settings' }));
    await screen.findByRole('heading', { name: 'Settings', level: 1 });
    expect(document.querySelector('#settings-server')?.textContent).toBe('https://countersign.example.com');
    expect(document.querySelector('#settings-subject')?.textContent).toContain('alice@example.com');
    expect(document.querySelector('#settings-device')?.textContent).toBe('dev_01TEST');
    expect(document.querySelector('#settings-platform')?.textContent).toBe('Desktop');

    await user.click(screen.getByRole('button', { name: 'Remove this device' }));
    expect(backend.callsTo('remove_device')).toHaveLength(0);
    const confirm = screen.getByRole('button', { name: 'Yes, remove this device' });
    expect(confirm.id).toBe('remove-confirm');

    await user.click(screen.getByRole('button', { name: 'Keep this device' }));
    expect(document.querySelector('#remove-confirm')).toBeNull();
    expect(backend.callsTo('remove_device')).toHaveLength(0);

    await user.click(screen.getByRole('button', { name: 'Remove this device' }));
    await user.click(screen.getByRole('button', { name: 'Yes, remove this device' }));
    await screen.findByLabelText('Invitation link');
    expect(backend.callsTo('remove_device')).toHaveLength(1);
    expect(document.querySelector('nav')).toBeNull();
    expect(document.querySelector('#live-status')?.textContent).toBe('Not connected');
  });

  it('stays and explains when removing fails', async () => {
    const { user } = await start({ remove_device: () => failure('network') });
    await user.click(screen.getByRole('button', { name: 'Settings' }));
    await user.click(await screen.findByRole('button', { name: 'Remove this device' }));
    await user.click(screen.getByRole('button', { name: 'Yes, remove this device' }));
    expect((await screen.findByRole('alert')).textContent).toContain('Could not reach the server');
    await waitFor(() =>
      expect((document.querySelector('#remove-confirm') as HTMLButtonElement).disabled).toBe(false),
    );
    expect(document.querySelector('nav')).not.toBeNull();
  });
});
