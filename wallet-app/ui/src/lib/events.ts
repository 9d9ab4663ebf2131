// Events the backend emits to the front end.

import { listen, type UnlistenFn } from '@tauri-apps/api/event';

export const WALLET_EVENTS = {
  /** A new request arrived: payload `{ request_id }`. */
  request: 'wallet://request',
  /** Something changed that the wallet cannot name: refresh. */
  resync: 'wallet://resync',
  /** The live channel connected or dropped: payload `{ connected }`. */
  live: 'wallet://live',
  /** An enrollment link was opened: payload `{ uri }`. */
  deepLink: 'wallet://deep-link',
} as const;

export interface WalletEventHandlers {
  /** A `wallet://request` or `wallet://resync`: the list of pending requests may differ. */
  changed(): void;
  live(connected: boolean): void;
  deepLink(uri: string): void;
}

/**
 * Listens to every wallet event. Resolves once all listeners are registered, so a caller
 * that waits for it before asking the backend for state misses no event; the function
 * it resolves to removes them all.
 */
export async function listenWalletEvents(handlers: WalletEventHandlers): Promise<UnlistenFn> {
  const unlisteners = await Promise.all([
    listen<{ request_id?: string }>(WALLET_EVENTS.request, () => handlers.changed()),
    listen(WALLET_EVENTS.resync, () => handlers.changed()),
    listen<{ connected?: unknown }>(WALLET_EVENTS.live, (event) =>
      handlers.live(event.payload?.connected === true),
    ),
    listen<{ uri?: unknown }>(WALLET_EVENTS.deepLink, (event) => {
      const uri = event.payload?.uri;
      if (typeof uri === 'string') handlers.deepLink(uri);
    }),
  ]);
  return () => {
    for (const unlisten of unlisteners) {
      // The backend may already be gone (window closing): nothing is left to remove then.
      Promise.resolve()
        .then(unlisten)
        .catch(() => undefined);
    }
  };
}
