// The current time, as reactive state: reading `clock.nowMs` inside an effect or a
// template re-runs it every second, and the one timer behind it runs only while
// something on screen reads it.

import { createSubscriber } from 'svelte/reactivity';

const TICK_MS = 1000;

class Clock {
  #subscribe = createSubscriber((update) => {
    const timer = setInterval(update, TICK_MS);
    return () => clearInterval(timer);
  });

  get nowMs(): number {
    this.#subscribe();
    return Date.now();
  }
}

export const clock = new Clock();
