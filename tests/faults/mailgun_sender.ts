/**
 * A sender that behaves like Mailgun towards a webhook: many events in
 * flight, each retried until it gets `200` or `406` (anything else, a
 * connection error or a timeout is retried with backoff), and on each retry
 * either the original signature block again or a fresh signature with a new
 * token, since both behaviours are reported for Mailgun.
 */
import { type SignatureBlock, signWebhook } from "../../src/mailgun/sign_webhook.ts";

/** One event to deliver. */
export interface OutgoingEvent {
  /** Unique per event (Mailgun's event id), for the report. */
  id: string;
  data: unknown;
}

/** How to send. */
export interface SenderOptions {
  /** The webhook URL (e.g. `http://127.0.0.1:8000/v1/mailgun/webhook`). */
  url: string;
  signingKey: string;
  /** In first-try order. */
  events: OutgoingEvent[];
  random: () => number;
  /** Most requests in flight at once (Mailgun's is unknown; 16 is a busy account). */
  concurrency?: number;
  /** Attempts before giving an event up (Mailgun gives up after about 8 hours). */
  maxAttempts?: number;
  /** Backoff of the first retry; doubled each time up to `maxBackoffMs`, with full jitter. */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** Mailgun waits about 10 s for an answer. */
  requestTimeoutMs?: number;
  /** Called each time an event is settled (done, refused with 406, or given up). */
  onSettled?: (settled: number) => void;
  /** Stops the run: events not done by then count as given up. */
  signal?: AbortSignal;
  /** Receives the report as it fills, to watch a long run. */
  onStart?: (report: SenderReport) => void;
}

/** What happened to one event. */
export interface EventDelivery {
  attempts: number;
  /** The last answer: a status, or "error" for a connection error or timeout. */
  last: number | "error";
  /** Tokens of the attempts answered 200 (they must be in the consumed-token table). */
  acceptedTokens: string[];
}

/** The figures of a run. */
export interface SenderReport {
  /** Distinct events. */
  events: number;
  /** Requests started, whatever became of them. */
  deliveries: number;
  /** Answers by status. */
  statuses: Record<string, number>;
  /** Connection refused, reset, or cut mid-request. */
  connectionErrors: number;
  /** No answer within the request timeout. */
  timeouts: number;
  retries: number;
  retriesWithOriginalSignature: number;
  retriesWithFreshSignature: number;
  /** Events that were still failing after `maxAttempts`. */
  givenUp: string[];
  /** Events answered 406 ("do not retry"). */
  refused: string[];
  /** Answers of 200 that said `duplicate: true`. */
  duplicates: number;
  maxInFlight: number;
  durationMs: number;
  byEvent: Map<string, EventDelivery>;
}

/** Delivers every event until it is done, like Mailgun; resolves with the figures. */
export async function runMailgunSender(options: SenderOptions): Promise<SenderReport> {
  const concurrency = options.concurrency ?? 16;
  const maxAttempts = options.maxAttempts ?? 40;
  const baseBackoffMs = options.baseBackoffMs ?? 25;
  const maxBackoffMs = options.maxBackoffMs ?? 1_000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const { random } = options;
  const started = performance.now();
  const report: SenderReport = {
    events: options.events.length,
    deliveries: 0,
    statuses: {},
    connectionErrors: 0,
    timeouts: 0,
    retries: 0,
    retriesWithOriginalSignature: 0,
    retriesWithFreshSignature: 0,
    givenUp: [],
    refused: [],
    duplicates: 0,
    maxInFlight: 0,
    durationMs: 0,
    byEvent: new Map(),
  };
  options.onStart?.(report);
  let next = 0;
  let inFlight = 0;
  let settled = 0;

  async function attempt(signature: SignatureBlock, data: unknown): Promise<number | "error"> {
    const body = JSON.stringify({ signature, "event-data": data });
    report.deliveries++;
    inFlight++;
    report.maxInFlight = Math.max(report.maxInFlight, inFlight);
    try {
      const response = await fetch(options.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        signal: options.signal
          ? AbortSignal.any([options.signal, AbortSignal.timeout(requestTimeoutMs)])
          : AbortSignal.timeout(requestTimeoutMs),
      });
      const text = await response.text();
      report.statuses[response.status] = (report.statuses[response.status] ?? 0) + 1;
      if (response.status === 200 && text.includes('"duplicate":true')) report.duplicates++;
      return response.status;
    } catch (error) {
      if ((error as Error).name === "TimeoutError") report.timeouts++;
      else report.connectionErrors++;
      return "error";
    } finally {
      inFlight--;
    }
  }

  async function deliver(event: OutgoingEvent): Promise<void> {
    const original = signWebhook(options.signingKey);
    const delivery: EventDelivery = { attempts: 0, last: "error", acceptedTokens: [] };
    report.byEvent.set(event.id, delivery);
    let signature = original;
    for (;;) {
      delivery.attempts++;
      delivery.last = await attempt(signature, event.data);
      if (delivery.last === 200) delivery.acceptedTokens.push(signature.token);
      if (delivery.last === 200 || delivery.last === 406) break;
      if (delivery.attempts >= maxAttempts || options.signal?.aborted) {
        report.givenUp.push(event.id);
        return;
      }
      const ceiling = Math.min(maxBackoffMs, baseBackoffMs * 2 ** (delivery.attempts - 1));
      await new Promise((resolve) => setTimeout(resolve, ceiling / 2 + (random() * ceiling) / 2));
      report.retries++;
      if (random() < 0.5) {
        report.retriesWithOriginalSignature++;
        signature = original;
      } else {
        report.retriesWithFreshSignature++;
        signature = signWebhook(options.signingKey);
      }
    }
    if (delivery.last === 406) report.refused.push(event.id);
  }

  async function worker(): Promise<void> {
    while (next < options.events.length && !options.signal?.aborted) {
      const event = options.events[next++];
      await deliver(event);
      settled++;
      options.onSettled?.(settled);
    }
  }

  await Promise.all(Array.from({ length: concurrency }, worker));
  report.durationMs = Math.round(performance.now() - started);
  return report;
}

/** The figures of a report as one plain object, for printing. */
export function summarise(report: SenderReport): Record<string, unknown> {
  const { byEvent: _byEvent, givenUp, refused, ...rest } = report;
  return { ...rest, givenUp: givenUp.length, refused: refused.length };
}
