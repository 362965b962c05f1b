import type { PendingQuery, Row } from "postgres";

/**
 * Awaits a postgres.js query for at most `timeoutMs`; past it, asks the
 * server to cancel it and rejects with `onTimeout()`. A query that loses the
 * race never becomes an unhandled rejection.
 */
export async function withTimeout<T extends readonly Row[]>(
  query: PendingQuery<T>,
  timeoutMs: number,
  onTimeout: () => Error,
): Promise<T> {
  query.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      query.cancel();
      reject(onTimeout());
    }, Math.max(timeoutMs, 1));
  });
  try {
    return await Promise.race([query, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
