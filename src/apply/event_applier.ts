import type { Sql } from "postgres";
import { applyEvents, type EventRow, type EventRowResult } from "../db/apply_events_query.ts";
import { classifyError } from "../db/classify_error.ts";
import { withTimeout } from "../db/with_timeout.ts";
import { NotAcceptableError, UnavailableError } from "../http/errors.ts";

/** Retries of a statement that hit a deadlock or lost its connection. */
export const MAX_STATEMENT_ATTEMPTS = 3;

/** Tuning of the applier. */
export interface ApplierOptions {
  /** Most webhooks in one statement. */
  maxBatch: number;
  /** Statements in flight at once. */
  maxInFlight: number;
  /** Bound on one statement, after which the batch answers 503. */
  queryTimeoutMs: number;
  /** Most webhooks waiting; past it, 503 at once, so that an overload sheds load instead of memory. */
  maxQueued: number;
}

/** Applies signed webhooks to the database, batching concurrent ones. */
export interface EventApplier {
  /** Resolves with what the database did, or rejects with an HttpError (503, 406). */
  apply(row: EventRow): Promise<EventRowResult>;
  /** Resolves when nothing is queued or in flight. */
  drain(): Promise<void>;
}

interface Pending {
  row: EventRow;
  resolve: (result: EventRowResult) => void;
  reject: (error: unknown) => void;
}

/**
 * Natural batching: a webhook that arrives while fewer than `maxInFlight`
 * statements run is written at once; the others gather and go together in
 * the next statement, so nothing waits at low load and a burst costs few
 * commits. Each webhook still gets its own outcome. A batch never holds the
 * same token or the same event twice: such a webhook waits for the next one.
 */
export function createEventApplier(sql: Sql, options: ApplierOptions): EventApplier {
  let queue: Pending[] = [];
  let inFlight = 0;
  let scheduled = false;
  let idle: (() => void)[] = [];

  function schedule() {
    if (scheduled || queue.length === 0 || inFlight >= options.maxInFlight) return;
    scheduled = true;
    // A microtask lets webhooks parsed in the same tick join one batch.
    queueMicrotask(flush);
  }

  function flush() {
    scheduled = false;
    while (queue.length > 0 && inFlight < options.maxInFlight) {
      const batch = takeBatch();
      inFlight++;
      runBatch(batch).finally(() => {
        inFlight--;
        schedule();
        if (inFlight === 0 && queue.length === 0) {
          for (const resolve of idle) resolve();
          idle = [];
        }
      });
    }
  }

  function takeBatch(): Pending[] {
    const batch: Pending[] = [];
    const rest: Pending[] = [];
    const tokens = new Set<string>();
    const events = new Set<string>();
    for (const pending of queue) {
      // Keyed as the trail is: the database keeps timestamps to the microsecond.
      const eventKey = pending.row.eventId === null
        ? null
        : `${pending.row.eventId}\n${Math.round((pending.row.eventTimestamp ?? 0) * 1e6)}`;
      if (
        batch.length >= options.maxBatch || tokens.has(pending.row.token) ||
        (eventKey !== null && events.has(eventKey))
      ) {
        rest.push(pending);
        continue;
      }
      tokens.add(pending.row.token);
      if (eventKey !== null) events.add(eventKey);
      batch.push(pending);
    }
    queue = rest;
    return batch;
  }

  async function runBatch(batch: Pending[]): Promise<void> {
    try {
      const results = await runStatement(batch.map((pending) => pending.row));
      batch.forEach((pending, i) => pending.resolve(results[i]));
    } catch (error) {
      if (batch.length > 1 && classifyError(error) === "data") {
        // One webhook's data broke the statement: write the others one by one.
        await Promise.all(batch.map((pending) => runBatch([pending])));
        return;
      }
      const failure = toHttpError(error);
      for (const pending of batch) pending.reject(failure);
    }
  }

  async function runStatement(rows: EventRow[]): Promise<EventRowResult[]> {
    const deadline = Date.now() + options.queryTimeoutMs;
    for (let attempt = 1;; attempt++) {
      try {
        const result = await withTimeout(
          applyEvents(sql, rows),
          deadline - Date.now(),
          () => new UnavailableError(`Database did not answer within ${options.queryTimeoutMs} ms.`),
        );
        return result.map((row) => ({
          accepted: row.accepted as boolean,
          matched: row.matched as number,
          appended: row.appended as number,
        }));
      } catch (error) {
        const kind = classifyError(error);
        const retryable = kind === "connection" || kind === "conflict";
        if (!retryable || attempt >= MAX_STATEMENT_ATTEMPTS || Date.now() >= deadline) throw error;
      }
    }
  }

  return {
    apply(row) {
      if (queue.length >= options.maxQueued) {
        return Promise.reject(new UnavailableError("Too many webhooks waiting; retry later."));
      }
      return new Promise((resolve, reject) => {
        queue.push({ row, resolve, reject });
        schedule();
      });
    },
    drain() {
      if (inFlight === 0 && queue.length === 0) return Promise.resolve();
      return new Promise((resolve) => idle.push(resolve));
    },
  };
}

function toHttpError(error: unknown): Error {
  if (error instanceof UnavailableError) return error;
  if (classifyError(error) === "data") {
    return new NotAcceptableError("event-data cannot be stored by the database.");
  }
  return new UnavailableError("Database is unavailable; retry later.");
}
