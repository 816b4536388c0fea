/** An injectable clock (so tests never sleep): scheduler, backoff and timeouts read it. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
