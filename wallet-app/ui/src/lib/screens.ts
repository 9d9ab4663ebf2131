// The app's screens as a small state machine: one value says what is on screen.

export type Screen =
  | { name: 'starting' }
  | { name: 'failed'; message: string }
  /**
   * The wallet is sealed. `firstRun`: no passphrase chosen yet. `relocked`: it locked
   * while the app ran (a command answered `locked`).
   */
  | { name: 'unlock'; firstRun: boolean; relocked: boolean }
  | { name: 'enroll'; uri: string; preview: boolean; visit: number }
  | { name: 'inbox' }
  | { name: 'request'; id: string }
  | { name: 'history' }
  | { name: 'settings' };

export type ScreenName = Screen['name'];

/** The state of the live channel, as the header shows it. */
export type LiveState = 'off' | 'connecting' | 'live' | 'offline';
