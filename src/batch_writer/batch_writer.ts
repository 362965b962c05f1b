import type { Sql } from "postgres";
import { classifyError } from "../db/classify_error.ts";
import {
  DatabaseUnavailableError,
  DataRefusedError,
  type HostSchemaRefusedError,
  toDatabaseError,
  toHostSchemaRefusedError,
} from "../db/database_errors.ts";
import { type BatchRow, type BatchRowResult, type TokenWrite, writeBatch } from "../db/write_batch_query.ts";
import { sha256Hex } from "../encoding/sha256_hex.ts";
import { log } from "../reporting/log.ts";
import { type Deadline, deadlineAfter } from "../timing/deadline_after.ts";
import { DeadlineExceededError, QueueFullError } from "./batch_writer_errors.ts";

/** Retries of a statement that hit a deadlock or lost its connection. */
const MAX_STATEMENT_ATTEMPTS = 3;
/**
 * Lock timeouts one webhook may meet before it is answered 503: the batch's,
 * then its own statement's (alone, or re-run once when it was alone already).
 * Two, so that a row briefly held by another instance's batch is not refused at once.
 */
const MAX_LOCK_TIMEOUTS = 2;

/** Tuning of the batch writer. */
interface BatchWriterOptions {
  /** Most webhooks in one statement. */
  maxBatch: number;
  /** Statements in flight at once. */
  maxInFlight: number;
  /**
   * Longest wait, in ms, for a batch to gather as many webhooks as the last
   * one held before it is sent (0 or unset: sent at once). See createBatchWriter.
   */
  gatherMs?: number;
  /** Bound on one statement, after which the batch answers 503. */
  queryTimeoutMs: number;
  /** Bound on one row lock wait (PostgreSQL lock_timeout). */
  lockTimeoutMs: number;
  /** Bound on the whole wait of one webhook, queue plus statements, from `apply`; past it, 503. */
  deadlineMs: number;
  /** Most webhooks waiting; past it, 503 at once, so that an overload sheds load instead of memory. */
  maxQueued: number;
  /**
   * Past this wait of the oldest queued webhook, with a whole batch or more waiting, new ones get 503 at
   * once (see DEFAULT_BATCH_QUEUE_WAIT_MAX_MS).
   */
  maxQueueWaitMs?: number;
  /** Told of each webhook the API's schema refused (after it is logged), e.g. to check the schema again. */
  onSchemaRefused?: (error: HostSchemaRefusedError) => void;
}

/** Writes signed webhooks' rows to the database, batching concurrent ones. */
export interface BatchWriter {
  /**
   * Resolves with what the database did, or rejects with a QueueFullError, a
   * DeadlineExceededError, a DatabaseUnavailableError (or LockTimeoutError), a
   * DataRefusedError (token spent all the same), a HostSchemaRefusedError (token
   * unspent), or, for a bug, whatever was thrown.
   */
  write(row: BatchRow): Promise<BatchRowResult>;
  /**
   * Throws the QueueFullError that `write` would reject with now: a caller
   * sheds before spending anything on a webhook (reading, verifying, parsing)
   * while the writer is behind, so that an overload costs little per request.
   */
  admit(): void;
  /** Resolves when nothing is queued or in flight. */
  drain(): Promise<void>;
}

interface Pending {
  row: BatchRow;
  resolve: (result: BatchRowResult) => void;
  reject: (error: unknown) => void;
  /** The webhook's own deadline, cancelled when it settles. */
  deadline: Deadline;
  enqueuedAt: number;
  settled: boolean;
  lockTimeouts: number;
}

/**
 * Natural batching: a webhook that arrives while fewer than `maxInFlight`
 * statements run is written at once; the others gather and go together in
 * the next statement, so nothing waits at low load and a burst costs few
 * commits. Each webhook still gets its own outcome. A batch never holds the
 * same token or the same event twice: such a webhook waits for the next one.
 * When one webhook's row is locked or its data refused, the others of its
 * batch are written without it.
 *
 * Under load, `gatherMs` makes batches larger: when fewer webhooks wait than
 * the last batch held, the next batch waits for that many, at most `gatherMs`.
 * PostgreSQL's cost of a statement is about 0.5 ms of CPU whatever its size
 * (executor start, commit), so fewer, larger statements cost it less per
 * event. A lone webhook after a lone webhook never waits; the first one after
 * a burst waits at most `gatherMs`, once.
 */
export function createBatchWriter(sql: Sql, options: BatchWriterOptions): BatchWriter {
  let queue: Pending[] = [];
  let inFlight = 0;
  let scheduled = false;
  /** Webhooks in the last batch sent: what the next one waits for, at most `gatherMs`. */
  let lastBatch = 0;
  let gatherTimer: ReturnType<typeof setTimeout> | undefined;
  let idle: (() => void)[] = [];
  /** Statements re-run on their own after a lock timeout, outside the `maxInFlight` slots. */
  let detached = 0;

  function notifyIdle() {
    if (inFlight === 0 && queue.length === 0 && detached === 0) {
      for (const resolve of idle) resolve();
      idle = [];
    }
  }

  function detach(work: Promise<void>) {
    detached++;
    work.finally(() => {
      detached--;
      notifyIdle();
    });
  }

  function schedule() {
    if (scheduled || queue.length === 0 || inFlight >= options.maxInFlight) return;
    const gatherMs = options.gatherMs ?? 0;
    if (gatherMs > 0 && queue.length < Math.min(lastBatch, options.maxBatch)) {
      gatherTimer ??= setTimeout(() => {
        gatherTimer = undefined;
        // As many as have come: the next batch waits for no more than this one holds.
        lastBatch = 0;
        schedule();
      }, gatherMs);
      return;
    }
    if (gatherTimer !== undefined) {
      clearTimeout(gatherTimer);
      gatherTimer = undefined;
    }
    scheduled = true;
    // A microtask lets webhooks parsed in the same tick join one batch.
    queueMicrotask(flush);
  }

  function flush() {
    scheduled = false;
    while (queue.length > 0 && inFlight < options.maxInFlight) {
      const batch = takeBatch();
      if (batch.length === 0) continue;
      lastBatch = batch.length;
      inFlight++;
      runBatch(batch).finally(() => {
        inFlight--;
        schedule();
        notifyIdle();
      });
    }
  }

  function takeBatch(): Pending[] {
    const batch: Pending[] = [];
    const rest: Pending[] = [];
    const tokens = new Set<string>();
    const events = new Set<string>();
    for (const pending of queue) {
      if (pending.settled) continue;
      // Keyed by the event id alone: a key with the timestamp would need JavaScript to round
      // microseconds as PostgreSQL does, and they differ (…268415 vs …268414 for one of Mailgun's
      // samples), which would let one event into a batch twice. Two events that share an id on
      // different days merely go in successive batches. An event without an id has no key here (its
      // id is derived in SQL from the jsonb): two copies in one batch make one trail entry.
      const eventKey = pending.row.kind === "event" ? pending.row.event.eventId : null;
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
    const live = batch.filter((pending) => !pending.settled);
    if (live.length === 0) return;
    try {
      const results = await runStatement(live.map((pending) => pending.row));
      for (let i = 0; i < live.length; i++) resolveWith(live[i], results[i]);
    } catch (error) {
      const kind = classifyError(error);
      if (kind === "data" || kind === "schema") {
        if (live.length > 1) {
          // One webhook's data, or a value the API's schema refuses, broke the statement: write the others
          // one by one, so that only that webhook is refused.
          await Promise.all(live.map((pending) => runBatch([pending])));
        } else if (kind === "data") {
          await refuse(live[0], error);
        } else {
          refuseBySchema(live[0], error);
        }
        return;
      }
      if (kind === "lock") {
        for (const pending of live) pending.lockTimeouts++;
        // Each on its own statement, so that only the locked row's webhook waits again; detached, so
        // that this batch's slot is free for the webhooks that arrive meanwhile. A lone webhook is
        // re-run once (the lock may have been another instance's batch); then it is answered 503.
        const again = live.length > 1 ? live : live.filter((pending) => pending.lockTimeouts < MAX_LOCK_TIMEOUTS);
        for (const pending of again) detach(runBatch([pending]));
        if (again.length === live.length) return;
      }
      const failure = toDatabaseError(error);
      for (const pending of live) {
        if (kind !== "lock" || pending.lockTimeouts >= MAX_LOCK_TIMEOUTS) {
          rejectWith(pending, failure);
        }
      }
    }
  }

  /**
   * The database refused this webhook's data (its characters, its size): spend
   * its token, so that its signature cannot carry another body, then refuse it.
   * The token is bound as on the normal path, to the hash of the event-data's
   * jsonb form, so that a re-delivery of the same event, however serialised,
   * meets its own token and gets the same answer; only when the database cannot
   * read the event-data at all is it bound to a hash of its text computed here
   * (a re-delivery then fails the same way before reaching the token).
   */
  async function refuse(pending: Pending, cause: unknown): Promise<void> {
    const row = pending.row;
    try {
      let result: BatchRowResult;
      try {
        [result] = await runStatement([spendOf(row, jsonbBinding(row))]);
      } catch (error) {
        if (classifyError(error) !== "data") throw error;
        [result] = await runStatement([spendOf(row, { bodyHash: hashOf(row) })]);
      }
      if (!result.accepted) {
        resolveWith(pending, result);
        return;
      }
      const code = (cause as { code?: unknown }).code;
      rejectWith(pending, new DataRefusedError(`The database refused the event-data (${code}).`, { cause }));
    } catch (error) {
      rejectWith(pending, toDatabaseError(error));
    }
  }

  /**
   * The API's schema (or our statement) refused what this webhook writes: nothing
   * was written, its token stays unspent, and it is answered 503 so that Mailgun
   * retries until the schema is fixed. Said at error level, with what to change.
   */
  function refuseBySchema(pending: Pending, cause: unknown): void {
    const failure = toHostSchemaRefusedError(cause);
    const row = pending.row;
    log("error", "host schema refused a status the service writes", {
      error_code: (cause as { code?: unknown }).code,
      error_message: (cause as Error).message,
      table: failure.table,
      column: failure.column,
      constraint: failure.constraint,
      status: row.kind === "event" ? row.event.status : undefined,
      event_id: row.kind === "event" ? row.event.eventId ?? undefined : undefined,
      fix: failure.fix,
    });
    options.onSchemaRefused?.(failure);
    rejectWith(pending, failure);
  }

  async function runStatement(rows: BatchRow[]): Promise<BatchRowResult[]> {
    // Not cut short at the webhooks' deadlines: they are answered 503 by their own timers, and a
    // statement that still commits afterwards is harmless (Mailgun's retry is then a duplicate).
    const timeoutMs = options.queryTimeoutMs;
    let query: ReturnType<typeof writeBatch> | undefined;
    let expired = false;
    let expire!: (error: Error) => void;
    const timeout = new Promise<never>((_, reject) => (expire = reject));
    timeout.catch(() => {});
    // One bound over every attempt, on the timer shared by all statements (src/timing/deadline_after.ts):
    // a timer of its own per statement (set, then cleared) cost several microseconds per batch.
    const deadline = deadlineAfter(timeoutMs, () => {
      expired = true;
      // The server is asked to cancel what runs; whatever the query does afterwards is not awaited.
      query?.cancel();
      expire(new DatabaseUnavailableError(`Database did not answer within ${timeoutMs} ms.`));
    });
    try {
      for (let attempt = 1;; attempt++) {
        try {
          query = writeBatch(sql, rows, options.lockTimeoutMs);
          query.catch(() => {});
          const result = await Promise.race([query, timeout]);
          return result.map((row) => ({
            accepted: row.accepted as boolean,
            expired: row.expired as boolean,
            matched: row.matched as number,
            appended: row.appended as number,
          }));
        } catch (error) {
          const kind = classifyError(error);
          const retryable = kind === "connection" || kind === "conflict";
          if (expired || !retryable || attempt >= MAX_STATEMENT_ATTEMPTS) throw error;
        }
      }
    } finally {
      deadline.cancel();
    }
  }

  function expire(pending: Pending): void {
    if (pending.settled) return;
    const queued = queue.includes(pending);
    if (queued) queue = queue.filter((other) => other !== pending);
    const waitedMs = Date.now() - pending.enqueuedAt;
    log("warn", "webhook deadline exceeded", {
      event_id: pending.row.kind === "event" ? pending.row.event.eventId ?? undefined : undefined,
      waited_ms: waitedMs,
      deadline_ms: options.deadlineMs,
      stage: queued ? "queued" : "statement",
    });
    rejectWith(pending, new DeadlineExceededError(`Webhook was not written within ${options.deadlineMs} ms.`));
  }

  /** Why a webhook arriving now would be shed, or undefined when there is room. */
  function overload(): QueueFullError | undefined {
    if (queue.length >= options.maxQueued) return new QueueFullError("Too many webhooks waiting; retry later.");
    // Behind means more than the next statement takes: a queue that fits in one batch goes out whole,
    // however long a lock held the statement before it (two instances on the same rows).
    if (
      options.maxQueueWaitMs !== undefined && queue.length >= options.maxBatch &&
      Date.now() - queue[0].enqueuedAt > options.maxQueueWaitMs
    ) {
      return new QueueFullError(`Webhooks have waited over ${options.maxQueueWaitMs} ms; retry later.`);
    }
  }

  return {
    admit() {
      const error = overload();
      if (error) throw error;
    },
    write(row) {
      const error = overload();
      if (error) return Promise.reject(error);
      return new Promise((resolve, reject) => {
        const pending: Pending = {
          row,
          resolve,
          reject,
          deadline: deadlineAfter(options.deadlineMs, () => expire(pending)),
          enqueuedAt: Date.now(),
          settled: false,
          lockTimeouts: 0,
        };
        queue.push(pending);
        schedule();
      });
    },
    drain() {
      if (inFlight === 0 && queue.length === 0 && detached === 0) return Promise.resolve();
      return new Promise((resolve) => idle.push(resolve));
    },
  };
}

/** Answers a webhook once (a later answer, e.g. after its deadline, is dropped) and cancels its deadline. */
function resolveWith(pending: Pending, result: BatchRowResult): void {
  if (pending.settled) return;
  pending.settled = true;
  pending.deadline.cancel();
  pending.resolve(result);
}

/** As {@link resolveWith}, with a failure. */
function rejectWith(pending: Pending, error: unknown): void {
  if (pending.settled) return;
  pending.settled = true;
  pending.deadline.cancel();
  pending.reject(error);
}

/** The same token, spent alone with `binding`. */
function spendOf(row: BatchRow, binding: TokenWrite["binding"]): TokenWrite {
  return { kind: "token", token: row.token, signedAt: row.signedAt, binding };
}

/** The binding of the normal path: the event-data, whose jsonb form the database hashes. */
function jsonbBinding(row: BatchRow): TokenWrite["binding"] {
  return row.kind === "event" ? { eventData: row.event.eventData } : row.binding;
}

/** The hash a refused row's token is bound to: of its event-data, computed here since the database could not read it. */
function hashOf(row: BatchRow): string {
  if (row.kind === "event") return sha256Hex(row.event.eventData);
  return "bodyHash" in row.binding ? row.binding.bodyHash : sha256Hex(row.binding.eventData);
}
