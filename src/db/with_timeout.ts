/**
 * Awaits `query` for at most `timeoutMs`; past it, asks the server to cancel
 * it (a postgres.js query has `cancel`; other work, a few reads in a row, is
 * left to finish) and rejects with `onTimeout()`. Work that loses the race
 * never becomes an unhandled rejection.
 */
export async function withTimeout<T>(
  query: Promise<T> & { cancel?: () => unknown },
  timeoutMs: number,
  onTimeout: () => Error,
): Promise<T> {
  query.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      query.cancel?.();
      reject(onTimeout());
    }, Math.max(timeoutMs, 1));
  });
  try {
    return await Promise.race([query, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
