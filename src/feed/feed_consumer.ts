/**
 * The change feed of the Mailgun webhook's trail (docs/feed.md), for the API
 * to import: one file, no dependency but postgres.js.
 *
 * The trail `email_events` is read by cursor through
 * `mailgun_webhook.feed_after(cursor, n)` (migration 0016): every entry
 * exactly once, transactions in id order, the entries of one transaction
 * together, none passed while a transaction that could still add an earlier
 * one is open. A notification on `mailgun_webhook_feed` wakes the reader on
 * each commit; it is only a wake-up (notifications are lost while nobody
 * listens), so the loop also reads every `pollIntervalMs`.
 *
 * ```ts
 * const consumer = startFeedConsumer({
 *   sql,
 *   cursor: {
 *     load: async (tx) => (await tx`select cursor from feed_cursor for update`)[0]?.cursor,
 *     save: async (tx, cursor) => void await tx`update feed_cursor set cursor = ${cursor}`,
 *   },
 *   onChange: async (change, tx) => {
 *     // The API's own writes, in the transaction that stores the cursor: exactly once.
 *   },
 * });
 * // ... on shutdown:
 * await consumer.stop();
 * ```
 */
import type { Sql, TransactionSql } from "postgres";

/** The channel of the wake-up notifications (migration 0016's trigger). */
export const FEED_CHANNEL = "mailgun_webhook_feed";

/** The cursor before every entry of the feed. */
export const FEED_BEGINNING = "0:0";

/** A status on the ladder SENT < DELIVERED < FAILED < COMPLAINED that an entry climbs to. */
export type FeedStatus = "DELIVERED" | "FAILED" | "COMPLAINED";

/** A trail entry's type. */
export type FeedEntryType = "EMAIL_DELIVERED" | "EMAIL_FAILED" | "EMAIL_TEMP_FAILED" | "EMAIL_COMPLAINED";

/** One trail entry as the feed hands it over (no personal data: read the entry by `entryId` for more). */
export interface FeedChange {
  /** `<transaction id>:<entry id>`: store it once the change is handled; the feed resumes after it. */
  cursor: string;
  /** The id of the transaction that appended the entry (xid8, as text). */
  txid: string;
  /** `email_events.id`. */
  entryId: string;
  rowKind: "document" | "tenant";
  /** The document's or tenant's id, as text (the API's key may be bigint, integer or uuid). */
  rowId: string;
  type: FeedEntryType;
  /** The status the event climbs to; null for a temporary failure, which moves none. */
  status: FeedStatus | null;
  /**
   * The status's rank (1 SENT, 2 DELIVERED, 3 FAILED, 4 COMPLAINED; 0 for
   * none). A row's status is the highest rank its changes carried, whatever
   * the order they came in: keep the highest.
   */
  rank: number;
  mailgunEventId: string;
  eventTimestamp: Date;
  receivedAt: Date;
}

/** Where a consumer keeps its cursor; both get the batch's transaction. */
export interface CursorStore {
  /**
   * The stored cursor, or undefined before the first run. With several
   * consumers on one cursor, lock it here (`select ... for update`): they
   * then take turns instead of handing the same changes twice.
   */
  load(tx: TransactionSql): Promise<string | undefined>;
  /** Stores `cursor`; it commits with the callback's writes. */
  save(tx: TransactionSql, cursor: string): Promise<void>;
}

/** What {@link startFeedConsumer} needs. */
export interface FeedConsumerOptions {
  /** A postgres.js pool on the service's database; the consumer never ends it. */
  sql: Sql;
  cursor: CursorStore;
  /**
   * Handles one change, in the feed's order, inside the batch's transaction
   * (`tx`). A throw rolls the batch back, cursor included: its changes come
   * again after a backoff (at least once for effects outside `tx`).
   */
  onChange(change: FeedChange, tx: TransactionSql): Promise<void> | void;
  /**
   * Where to start when the store holds no cursor: "beginning", "now" (the
   * default; the cursor is stored at once so that nothing after it is
   * missed), or a cursor.
   */
  start?: "beginning" | "now" | string;
  /** Changes per transaction, 1 to 10000. Default 100. */
  batchSize?: number;
  /** The longest wait between reads without a notification. Default 10 s. */
  pollIntervalMs?: number;
  /** LISTEN for the wake-up (default true). False where it cannot work: a transaction-mode pooler, PGlite. */
  listen?: boolean;
  /** Told of a failed batch (it is retried after a backoff) or a failed LISTEN (it polls instead). */
  onError?(error: unknown): void;
  /** Told after each read that found less than a batch: everything below the horizon is handed over. */
  onCaughtUp?(): void;
}

/** A running consumer. */
export interface FeedConsumer {
  /** Ends the loop: the batch in progress finishes (or rolls back on error), then it stops listening. */
  stop(): Promise<void>;
  /** Resolves when the loop has ended. */
  done: Promise<void>;
}

const DEFAULT_BATCH_SIZE = 100;
const DEFAULT_POLL_INTERVAL_MS = 10_000;
/** The first wait after a failed batch, doubling up to 30 s (or the poll interval, if longer). */
const ERROR_BACKOFF_MS = 200;
const MAX_ERROR_BACKOFF_MS = 30_000;
/** The first re-read while a notified transaction is held back by an older open one, doubling. */
const HELD_BACK_RETRY_MS = 20;

const CURSOR = /^[0-9]{1,19}:[0-9]{1,19}$/;

/** Whether `text` is a cursor as the feed hands them out (`<txid>:<id>`). */
export function isFeedCursor(text: string): boolean {
  return CURSOR.test(text);
}

/** Orders two cursors as the feed does: by transaction id, then entry id. */
export function compareCursors(a: string, b: string): number {
  const [aTxid, aId] = a.split(":").map(BigInt);
  const [bTxid, bId] = b.split(":").map(BigInt);
  if (aTxid !== bTxid) return aTxid < bTxid ? -1 : 1;
  return aId === bId ? 0 : aId < bId ? -1 : 1;
}

/** A cursor at this moment: every change of a transaction not yet ended is after it. */
export async function feedNow(sql: Sql | TransactionSql): Promise<string> {
  const [row] = await sql`select mailgun_webhook.feed_now() as cursor`;
  return row.cursor as string;
}

/** What one read found: the changes, and the horizon (no transaction at or above it was passed). */
export interface FeedPage {
  changes: FeedChange[];
  /** `pg_snapshot_xmin` of the read's snapshot (xid8, as text). */
  horizon: string;
}

/** Reads at most `limit` changes after `after` (the contract's one query, plus its horizon). */
export async function readFeed(sql: Sql | TransactionSql, after: string, limit: number): Promise<FeedPage> {
  // One statement, one snapshot: the horizon is the one feed_after used.
  const rows = await sql`
    select h.horizon::text as horizon, f.*
    from (select pg_snapshot_xmin(pg_current_snapshot()) as horizon) h
    left join lateral mailgun_webhook.feed_after(${after}, ${limit}) f on true
  `;
  const changes: FeedChange[] = [];
  for (const row of rows) {
    if (row.cursor === null) continue;
    changes.push({
      cursor: row.cursor,
      txid: String(row.txid),
      entryId: String(row.entry_id),
      rowKind: row.row_kind,
      rowId: row.row_id,
      type: row.type,
      status: row.status,
      rank: Number(row.rank),
      mailgunEventId: row.mailgun_event_id,
      eventTimestamp: new Date(row.event_timestamp),
      receivedAt: new Date(row.received_at),
    });
  }
  return { changes, horizon: String(rows[0].horizon) };
}

/**
 * Starts the loop: read from the stored cursor, hand each change to
 * `onChange`, store the last change's cursor, all in one transaction per
 * batch; then wait for a notification or `pollIntervalMs`, whichever comes
 * first. A full batch is followed by the next at once.
 */
export function startFeedConsumer(options: FeedConsumerOptions): FeedConsumer {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
    throw new RangeError(`batchSize must be a whole number from 1 to 10000 (got ${batchSize}).`);
  }
  const start = options.start ?? "now";
  if (start !== "now" && start !== "beginning" && !isFeedCursor(start)) {
    throw new RangeError(`start must be "now", "beginning" or a cursor <txid>:<id> (got ${JSON.stringify(start)}).`);
  }
  let stopped = false;
  let woken = false;
  let wake: (() => void) | undefined;
  let stopWait: (() => void) | undefined;
  /** The highest transaction id a notification named: it may be held back behind an older open transaction. */
  let notified: bigint | undefined;
  const rouse = () => {
    woken = true;
    wake?.();
  };
  /** Waits `ms`, or less when stopped or, if `wakeable`, when a notification comes. */
  const sleep = (ms: number, wakeable = true) =>
    new Promise<void>((resolve) => {
      if ((wakeable && woken) || stopped) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        stopWait = undefined;
        resolve();
      }
      wake = wakeable ? done : undefined;
      stopWait = done;
    });

  const listening = options.listen === false ? Promise.resolve(undefined) : options.sql.listen(
    FEED_CHANNEL,
    (payload) => {
      const txid = /"txid":"(\d+)"/.exec(payload)?.[1];
      if (txid !== undefined && (notified === undefined || BigInt(txid) > notified)) notified = BigInt(txid);
      rouse();
    },
    // (Re)connected: notifications sent meanwhile are lost, so read.
    rouse,
  ).then((meta) => meta, (error) => {
    options.onError?.(error);
    return undefined;
  });

  const runBatch = async (): Promise<{ full: boolean; horizon: bigint }> => {
    return await options.sql.begin(async (tx) => {
      let cursor = await options.cursor.load(tx);
      if (cursor === undefined) {
        cursor = start === "beginning" ? FEED_BEGINNING : start === "now" ? await feedNow(tx) : start;
        // Stored before anything is read, so that "now" stays the moment the consumer first ran.
        await options.cursor.save(tx, cursor);
      }
      const page = await readFeed(tx, cursor, batchSize);
      for (const change of page.changes) await options.onChange(change, tx);
      if (page.changes.length > 0) await options.cursor.save(tx, page.changes[page.changes.length - 1].cursor);
      return { full: page.changes.length === batchSize, horizon: BigInt(page.horizon) };
    }) as { full: boolean; horizon: bigint };
  };

  const loop = async () => {
    let failures = 0;
    let heldBackRetries = 0;
    while (!stopped) {
      woken = false;
      let result;
      try {
        result = await runBatch();
        failures = 0;
      } catch (error) {
        options.onError?.(error);
        failures++;
        // Not cut short by notifications: under traffic they come all the time.
        await sleep(
          Math.min(ERROR_BACKOFF_MS * 2 ** (failures - 1), Math.max(pollIntervalMs, MAX_ERROR_BACKOFF_MS)),
          false,
        );
        continue;
      }
      if (result.full) continue;
      options.onCaughtUp?.();
      if (notified !== undefined && notified >= result.horizon) {
        // A committed transaction waits behind an older one still open, whose end may send no notification.
        await sleep(Math.min(HELD_BACK_RETRY_MS * 2 ** heldBackRetries++, pollIntervalMs));
        continue;
      }
      heldBackRetries = 0;
      await sleep(pollIntervalMs);
    }
  };

  const done = loop();
  return {
    done,
    async stop() {
      stopped = true;
      stopWait?.();
      await done;
      const meta = await listening;
      await meta?.unlisten().catch(() => {});
    },
  };
}
