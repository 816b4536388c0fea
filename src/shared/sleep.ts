/**
 * The one delay promise. `sleep(ms, signal)` resolves after `ms`, or rejects with the signal's
 * reason as soon as it aborts (its timer cleared, so an aborted sleep keeps nothing alive).
 */

/** Resolves after `ms`; rejects with `signal.reason` when `signal` aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
