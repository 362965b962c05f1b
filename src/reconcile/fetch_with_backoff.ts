/** How hard to retry a request that was rate limited or failed on the server's side. */
export interface BackoffOptions {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** The first wait; each further one doubles, with jitter. */
  baseDelayMs: number;
  /** No wait is longer, whatever `Retry-After` asks. */
  maxDelayMs: number;
  /** Bound on one attempt. */
  timeoutMs: number;
  /** Told before each wait (for the summary). */
  onRetry?: (reason: string, delayMs: number) => void;
  /** Told before each attempt (to count the requests a run makes). */
  onAttempt?: () => void;
}

/**
 * `fetch`, retried on `429` (honouring `Retry-After`), on `5xx`, and on
 * network errors and timeouts, with exponential backoff and jitter. Resolves
 * with the last response (which may still be a 429 or 5xx once the attempts
 * are spent); rejects only when the last attempt failed without a response.
 */
export async function fetchWithBackoff(url: string, init: RequestInit, options: BackoffOptions): Promise<Response> {
  for (let attempt = 1;; attempt++) {
    let response: Response | undefined;
    let failure: unknown;
    options.onAttempt?.();
    try {
      response = await fetch(url, { ...init, signal: AbortSignal.timeout(options.timeoutMs) });
    } catch (error) {
      failure = error;
    }
    const retryable = response === undefined || response.status === 429 || response.status >= 500;
    if (!retryable) return response!;
    if (attempt >= options.maxAttempts) {
      if (response !== undefined) return response;
      throw failure;
    }
    const exponential = options.baseDelayMs * 2 ** (attempt - 1);
    const jittered = exponential / 2 + Math.random() * exponential / 2;
    const asked = response?.status === 429 ? retryAfterMs(response.headers.get("retry-after")) : undefined;
    const delayMs = Math.min(options.maxDelayMs, Math.max(asked ?? 0, jittered));
    await response?.body?.cancel();
    const reason = response === undefined ? `network error (${(failure as Error)?.message})` : `${response.status}`;
    options.onRetry?.(reason, delayMs);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date. */
export function retryAfterMs(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
