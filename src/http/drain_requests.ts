import { jsonResponse } from "./error_response.ts";

/**
 * The shutdown budget. Deno Deploy sends SIGINT and kills the instance 5 s
 * later, so every step of a shutdown is bounded and together they stay under
 * {@link SHUTDOWN_DEADLINE_MS}. A request cut off by it is not lost: its
 * statement commits whole or not at all, and Mailgun retries an unanswered
 * request (a retry of a committed one is answered as a duplicate).
 */
export const SHUTDOWN_BUDGET_MS = {
  /** Requests in flight finish (their bodies arrive, their statement runs). */
  drain: 2_000,
  /** The HTTP server closes its connections. */
  server: 500,
  /** Statements still queued or running after that. */
  writer: 1_000,
  /** The pool closes (postgres.js cancels what is left). */
  pool: 500,
} as const;

/** Past it, the process exits whatever is left: under Deploy's 5 s grace after SIGINT. */
export const SHUTDOWN_DEADLINE_MS = 4_500;

/** Longest wait for requests in flight when stopping. */
const DRAIN_TIMEOUT_MS = SHUTDOWN_BUDGET_MS.drain;

/** Waits for `promise` at most `ms`; resolves false when the wait ran out (the promise keeps running, unwatched). */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true, () => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** A handler that can be drained before the server stops. */
interface DrainableHandler {
  handler: (request: Request) => Promise<Response>;
  /** From now on answers 503 (Mailgun retries), and resolves once the requests in flight have finished. */
  drain(timeoutMs?: number): Promise<void>;
}

/**
 * Tracks requests in flight. Deno's `server.shutdown()` cuts off request
 * bodies still arriving, so the service first lets those requests finish,
 * refusing new ones with a retryable 503, and only then shuts down.
 */
export function drainable(inner: (request: Request) => Promise<Response>): DrainableHandler {
  let inFlight = 0;
  let draining = false;
  let onIdle: (() => void) | undefined;
  return {
    async handler(request) {
      if (draining) {
        return jsonResponse(503, { ok: false, error: "Shutting down; retry later." }, { connection: "close" });
      }
      inFlight++;
      try {
        return await inner(request);
      } finally {
        if (--inFlight === 0) onIdle?.();
      }
    },
    drain(timeoutMs = DRAIN_TIMEOUT_MS) {
      draining = true;
      if (inFlight === 0) return Promise.resolve();
      return new Promise((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    },
  };
}
