import type { FeedChange } from "./feed_consumer.ts";
import { standardWebhookHeaders } from "./standard_webhook.ts";

/** The event type of every forwarded change: a trail entry was recorded (it may or may not move the status). */
const EVENT_TYPE = "email_event.recorded";

/** How hard to deliver one change. */
export interface ForwardOptions {
  url: string;
  /** FOLLOW_SECRET's bytes. */
  secret: Uint8Array;
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** The first wait; each further one doubles (with jitter), up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Bound on one attempt. */
  timeoutMs: number;
  /** Ends the retries at once (the follower is stopping). */
  signal?: AbortSignal;
  /** Told before each wait. */
  onRetry?: (reason: string, delayMs: number, attempt: number) => void;
}

/** The endpoint did not take a change within the attempts (or the follower stopped meanwhile). */
export class ForwardFailedError extends Error {
  constructor(readonly cursor: string, readonly attempts: number, readonly reason: string) {
    super(`Could not deliver ${cursor} after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${reason}`);
    this.name = "ForwardFailedError";
  }
}

/**
 * A change as JSON (Standard Webhooks' `type`, `timestamp`, `data`). The
 * same change gives the same bytes on every delivery: `timestamp` is when the
 * entry was received, not when it is sent.
 */
export function changeBody(change: FeedChange): string {
  return JSON.stringify({
    type: EVENT_TYPE,
    timestamp: change.receivedAt.toISOString(),
    data: changeJson(change),
  });
}

/** A change's fields in snake_case, as printed by `follow --json` and sent by `--forward`. */
export function changeJson(change: FeedChange): Record<string, unknown> {
  return {
    cursor: change.cursor,
    txid: change.txid,
    entry_id: change.entryId,
    row_kind: change.rowKind,
    row_id: change.rowId,
    type: change.type,
    status: change.status,
    rank: change.rank,
    mailgun_event_id: change.mailgunEventId,
    event_timestamp: change.eventTimestamp.toISOString(),
    received_at: change.receivedAt.toISOString(),
  };
}

/**
 * POSTs `change` to `options.url`, signed, with `webhook-id` its cursor (a
 * re-delivery carries the same id). Any 2xx is delivered; anything else, or no
 * answer within the bound, is retried with backoff; a fresh timestamp and
 * signature each time. Returns the status and the attempts it took; throws
 * a {@link ForwardFailedError} once the attempts are spent.
 */
export async function forwardChange(
  change: FeedChange,
  options: ForwardOptions,
): Promise<{ status: number; attempts: number }> {
  const body = changeBody(change);
  for (let attempt = 1;; attempt++) {
    let reason: string;
    try {
      const response = await fetch(options.url, {
        method: "POST",
        headers: standardWebhookHeaders(options.secret, change.cursor, Math.floor(Date.now() / 1000), body),
        body,
        signal: options.signal === undefined
          ? AbortSignal.timeout(options.timeoutMs)
          : AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs)]),
      });
      await response.body?.cancel();
      if (response.ok) return { status: response.status, attempts: attempt };
      reason = `HTTP ${response.status}`;
    } catch (error) {
      reason = options.signal?.aborted ? "stopped" : `no answer (${(error as Error)?.message ?? error})`;
    }
    if (attempt >= options.maxAttempts || options.signal?.aborted) {
      throw new ForwardFailedError(change.cursor, attempt, reason);
    }
    const exponential = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
    const delayMs = Math.round(exponential / 2 + Math.random() * exponential / 2);
    options.onRetry?.(reason, delayMs, attempt);
    await abortableDelay(delayMs, options.signal);
  }
}

function abortableDelay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
