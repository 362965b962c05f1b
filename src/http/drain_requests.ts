import { jsonResponse } from "./errors.ts";

/** Longest wait for requests in flight when stopping; Mailgun gives up on a request after about 10 s. */
export const DRAIN_TIMEOUT_MS = 10_000;

/** A handler that can be drained before the server stops. */
export interface DrainableHandler {
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
