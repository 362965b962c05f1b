/**
 * The trail as a change feed (migration 0016, src/feed/feed_consumer.ts):
 * the contract's read, its cursor, the wake-up's payload, erasure, and the
 * consumer's loop. On PostgreSQL, and on the embedded database where it can
 * work: PGlite runs every connection in one session, so no transaction can
 * be held open beside another (the held-back test is PostgreSQL's), and its
 * socket server hands a notification to the connection that committed it,
 * never to a listener (the consumer polls there).
 */
import assert from "node:assert/strict";
import postgres, { type Sql } from "postgres";
import { migrate } from "../src/db/migrate.ts";
import {
  compareCursors,
  FEED_BEGINNING,
  FEED_CHANNEL,
  type FeedChange,
  feedNow,
  readFeed,
  startFeedConsumer,
} from "../src/feed/feed_consumer.ts";
import { eventData, post, signedBody } from "./helpers/mailgun.ts";
import { createTestDatabase, type TestDatabase } from "./helpers/test_database.ts";
import { insertRow, newMessageId, startTestService } from "./helpers/test_service.ts";

/** The tests run on PGlite when DATABASE_URL is unset (tests/helpers/test_database.ts). */
const ON_EMBEDDED = !Deno.env.get("DATABASE_URL");

async function migratedDatabase(): Promise<{ db: TestDatabase; sql: Sql }> {
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: db.poolMax, prepare: db.kind === "postgres", onnotice: () => {} });
  await migrate(sql);
  return { db, sql };
}

/** Appends one trail entry for `documentId`, as the webhook's statement does (the default fills feed_txid). */
async function append(sql: Sql | postgres.TransactionSql, documentId: number, type = "EMAIL_DELIVERED") {
  const [row] = await sql`
    insert into email_events (document_id, type, mailgun_event_id, event_timestamp, recipient, event_data)
    values (${documentId}, ${type}, ${crypto.randomUUID()}, now(), 'ann@example.com', '{"recipient":"ann@example.com"}')
    returning id
  `;
  return String(row.id);
}

/** Every change after `after`, read in pages of `page`. */
async function readAll(sql: Sql, after: string, page = 3): Promise<FeedChange[]> {
  const all: FeedChange[] = [];
  let cursor = after;
  while (true) {
    const { changes } = await readFeed(sql, cursor, page);
    all.push(...changes);
    if (changes.length < page) return all;
    cursor = changes[changes.length - 1].cursor;
  }
}

/**
 * Every change after `after` once there are `count` of them: the horizon is
 * the whole cluster's oldest open transaction, so any other database's
 * traffic (another test file, a benchmark) may hold a commit back for a moment.
 */
async function readSettled(sql: Sql, after: string, count: number, page = 3): Promise<FeedChange[]> {
  const deadline = Date.now() + 10_000;
  while (true) {
    const changes = await readAll(sql, after, page);
    if (changes.length >= count || Date.now() > deadline) return changes;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("the feed hands over every entry once, in (transaction, entry) order, from a cursor; old entries stay out", async () => {
  const { db, sql } = await migratedDatabase();
  try {
    const doc = await insertRow(sql, "documents", newMessageId());
    // An entry from before the feed (as 0016 leaves the trail's older entries): not in it.
    await sql.begin(async (tx) => {
      await append(tx, doc);
      await tx`alter table email_events disable trigger email_events_update_guard`;
      await tx`update email_events set feed_txid = null`;
      await tx`alter table email_events enable trigger email_events_update_guard`;
    });
    const first = await append(sql, doc);
    const [second, third] = await sql.begin(async (
      tx,
    ) => [await append(tx, doc), await append(tx, doc, "EMAIL_TEMP_FAILED")]);
    const changes = await readSettled(sql, FEED_BEGINNING, 3, 2);
    assert.deepEqual(changes.map((change) => change.entryId), [first, second, third]);
    assert.equal(changes[1].txid, changes[2].txid, "one transaction's entries share its id");
    assert.ok(compareCursors(changes[0].cursor, changes[1].cursor) < 0);
    assert.deepEqual(
      changes.map(({ rowKind, rowId, type, status, rank }) => ({ rowKind, rowId, type, status, rank })),
      [
        { rowKind: "document", rowId: String(doc), type: "EMAIL_DELIVERED", status: "DELIVERED", rank: 2 },
        { rowKind: "document", rowId: String(doc), type: "EMAIL_DELIVERED", status: "DELIVERED", rank: 2 },
        { rowKind: "document", rowId: String(doc), type: "EMAIL_TEMP_FAILED", status: null, rank: 0 },
      ],
    );
    // From a cursor: only what follows it; from the last: nothing.
    assert.deepEqual((await readAll(sql, changes[0].cursor)).map((change) => change.entryId), [second, third]);
    assert.deepEqual(await readAll(sql, changes[2].cursor), []);
    // From now: nothing before, everything after.
    const now = await feedNow(sql);
    assert.deepEqual(await readAll(sql, now), []);
    const fourth = await append(sql, doc, "EMAIL_COMPLAINED");
    assert.deepEqual((await readSettled(sql, now, 1)).map((change) => [change.entryId, change.status]), [[
      fourth,
      "COMPLAINED",
    ]]);
    // A cursor the feed never gave is refused, never read as the beginning.
    for (
      const bad of ["", "now", "1", "1:", ":1", "-1:0", "1:2:3", "99999999999999999999:0", "1:99999999999999999999"]
    ) {
      await assert.rejects(() => sql`select * from mailgun_webhook.feed_after(${bad}, 10)`, { code: "22023" }, bad);
    }
    await assert.rejects(() => sql`select * from mailgun_webhook.feed_after('0:0', 0)`, { code: "22023" });
  } finally {
    await sql.end();
    await db.drop();
  }
});

Deno.test({
  name: "a transaction still open holds back every later one: committed out of id order, nothing is skipped",
  // PGlite: one session, no transaction can stay open beside another.
  ignore: ON_EMBEDDED,
}, async () => {
  const { db, sql } = await migratedDatabase();
  try {
    const doc = await insertRow(sql, "documents", newMessageId());
    const start = await feedNow(sql);
    // A takes its transaction id first and stays open; B commits after it; a reader in between sees neither.
    const held = await sql.reserve();
    try {
      await held`begin`;
      const early = await append(held, doc);
      const late = await append(sql, doc);
      assert.deepEqual(await readAll(sql, start), [], "B is not passed while A, with a lower id, is open");
      await held`commit`;
      const changes = await readSettled(sql, start, 2);
      assert.deepEqual(changes.map((change) => change.entryId), [early, late], "A (lower id) then B");
      // A reader that had stored B's cursor would have lost A: the feed's order is the transactions' ids, so it never stores it first.
      assert.ok(compareCursors(changes[0].cursor, changes[1].cursor) < 0);
    } finally {
      await held`rollback`.catch(() => {});
      held.release();
    }
  } finally {
    await sql.end();
    await db.drop();
  }
});

Deno.test({
  name:
    "one notification per appending statement, on commit: its transaction id, row kinds, ids and statuses, no personal data",
  // PGlite's socket server never hands a notification to a listening connection (see the header).
  ignore: ON_EMBEDDED,
}, async () => {
  const { db, sql } = await migratedDatabase();
  try {
    const payloads: string[] = [];
    const listener = await sql.listen(FEED_CHANNEL, (payload) => payloads.push(payload));
    const doc = await insertRow(sql, "documents", newMessageId());
    const tenant = await insertRow(sql, "tenants", newMessageId());
    await sql.begin(async (tx) => {
      await append(tx, doc, "EMAIL_FAILED");
      await tx`
        insert into email_events (tenant_id, type, mailgun_event_id, event_timestamp, recipient, event_data)
        values (${tenant}, 'EMAIL_TEMP_FAILED', 'ev-1', now(), 'ann@example.com', '{}'),
               (${tenant}, 'EMAIL_COMPLAINED', 'ev-2', now(), 'ann@example.com', '{}')
      `;
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(payloads.length, 0, "nothing before the commit");
    });
    // A statement that appends nothing (a re-delivery) sends nothing.
    await sql`insert into email_events (tenant_id, type, mailgun_event_id, event_timestamp, event_data)
              select ${tenant}, 'EMAIL_COMPLAINED', 'ev-2', now(), '{}' where false`;
    // A large statement: its payload stays under PostgreSQL's 8000 bytes and says "more".
    const many = await sql`select generate_series(1, 600) as n`;
    await sql`
      insert into email_events (document_id, type, mailgun_event_id, event_timestamp, event_data)
      select ${doc}, 'EMAIL_DELIVERED', 'bulk-' || n, now(), '{}' from generate_series(1, ${many.length}) n
    `;
    const deadline = Date.now() + 5_000;
    while (payloads.length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(payloads.length, 3, payloads.join("\n"));
    const [one, two] = payloads.map((payload) => JSON.parse(payload));
    assert.deepEqual(one.entries, [["document", String(doc), "FAILED"]]);
    assert.deepEqual(two.entries, [["tenant", String(tenant), null], ["tenant", String(tenant), "COMPLAINED"]]);
    assert.equal(one.txid, two.txid, "both statements of one transaction name it");
    const changes = await readSettled(sql, FEED_BEGINNING, 603, 1000);
    assert.equal(changes[0].txid, one.txid);
    assert.ok(!payloads.some((payload) => payload.includes("@")), "no address in any payload");
    const bulk = JSON.parse(payloads[2]);
    assert.equal(bulk.more, true);
    assert.ok(new TextEncoder().encode(payloads[2]).length < 8000);
    assert.ok(bulk.entries.length > 100 && bulk.entries.length < 600, String(bulk.entries.length));
    await listener.unlisten();
  } finally {
    await sql.end();
    await db.drop();
  }
});

Deno.test("an erasure changes no entry's place in the feed, and nothing may move it", async () => {
  const { db, sql } = await migratedDatabase();
  try {
    const doc = await insertRow(sql, "documents", newMessageId());
    await append(sql, doc);
    await append(sql, doc, "EMAIL_COMPLAINED");
    const before = await readSettled(sql, FEED_BEGINNING, 2);
    const [{ erased }] = await sql`select mailgun_webhook.erase_recipient('ann@example.com') as erased`;
    assert.equal(erased, 2);
    const after = await readAll(sql, FEED_BEGINNING);
    assert.deepEqual(after, before);
    // A consumer at the first entry's cursor still gets exactly the second.
    assert.deepEqual((await readAll(sql, before[0].cursor)).map((change) => change.entryId), [before[1].entryId]);
    // Even inside an erasure's mark, feed_txid cannot change.
    await assert.rejects(
      () =>
        sql.begin(async (tx) => {
          await tx`insert into mailgun_webhook.erasing_transactions (txid) values (txid_current())`;
          await tx`update email_events set feed_txid = '1'::xid8`;
        }),
      /an erasure changes only recipient and event_data/,
    );
    // The API deleting the document takes its entries with it: the feed goes on after them.
    await sql`delete from documents where id = ${doc}`;
    assert.deepEqual(await readAll(sql, FEED_BEGINNING), []);
    const doc2 = await insertRow(sql, "documents", newMessageId());
    const next = await append(sql, doc2);
    assert.deepEqual((await readSettled(sql, before[1].cursor, 1)).map((change) => change.entryId), [next]);
  } finally {
    await sql.end();
    await db.drop();
  }
});

Deno.test("the consumer: each change once, the cursor stored with the callback's writes, a failed batch handed again, resumed after a stop", async () => {
  const svc = await startTestService();
  const sql = svc.sql;
  const embedded = svc.db.kind === "embedded";
  try {
    await sql`create table feed_cursor (cursor text)`;
    await sql`create table handled (cursor text primary key, row_id text, status text, rank int)`;
    const store = {
      load: async (tx: postgres.TransactionSql) => (await tx`select cursor from feed_cursor for update`)[0]?.cursor,
      save: async (tx: postgres.TransactionSql, cursor: string) => {
        const updated = await tx`update feed_cursor set cursor = ${cursor}`;
        if (updated.count === 0) await tx`insert into feed_cursor (cursor) values (${cursor})`;
      },
    };
    let failOnce = true;
    const errors: unknown[] = [];
    const consume = () =>
      startFeedConsumer({
        sql,
        cursor: store,
        start: "beginning",
        batchSize: 4,
        // PGlite delivers no notification: the poll interval wakes it.
        pollIntervalMs: embedded ? 100 : 2_000,
        listen: !embedded,
        onError: (error) => errors.push(error),
        async onChange(change, tx) {
          await tx`insert into handled (cursor, row_id, status, rank)
                   values (${change.cursor}, ${change.rowId}, ${change.status}, ${change.rank})`;
          if (failOnce && change.status === "FAILED") {
            failOnce = false;
            throw new Error("the API's handler failed once");
          }
        },
      });
    const docs = [];
    for (let i = 0; i < 3; i++) {
      const messageId = newMessageId();
      docs.push({ id: await insertRow(sql, "documents", messageId), messageId });
    }
    const send = async (kind: "delivered" | "permanent" | "complained", messageId: string) =>
      assert.equal((await post(svc.url, signedBody(svc.key, eventData(kind, messageId)).body)).status, 200);
    let consumer = consume();
    const waitHandled = async (count: number) => {
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        const [{ n }] = await sql`select count(*)::int as n from handled`;
        if (n >= count) return n;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      throw new Error(`fewer than ${count} changes handled`);
    };
    // Each row: a complaint, then a late delivery, then a permanent failure (out of ladder order).
    for (const doc of docs) {
      await send("complained", doc.messageId);
      await send("delivered", doc.messageId);
    }
    await waitHandled(6);
    await consumer.stop();
    for (const doc of docs) await send("permanent", doc.messageId);
    consumer = consume();
    await waitHandled(9);
    await consumer.stop();
    assert.equal(errors.length, 1, String(errors));
    const handled = await sql`select cursor, row_id, status, rank from handled`;
    const trail = await sql`select feed_txid::text || ':' || id as cursor from email_events order by feed_txid, id`;
    assert.deepEqual(
      handled.map((row) => row.cursor).sort(compareCursors),
      trail.map((row) => row.cursor),
      "every entry handled once",
    );
    const [{ cursor }] = await sql`select cursor from feed_cursor`;
    assert.equal(cursor, trail[trail.length - 1].cursor, "the stored cursor is the last change's");
    // The highest rank a row's changes carried is its status, whatever order they came in.
    for (const doc of docs) {
      const [{ email_status }] = await sql`select email_status from documents where id = ${doc.id}`;
      const [{ status }] = await sql`select status from handled where row_id = ${String(doc.id)}
                                     order by rank desc limit 1`;
      assert.equal(status, email_status);
      assert.equal(status, "COMPLAINED");
    }
  } finally {
    await svc.close();
  }
});

Deno.test({
  name:
    "the consumer wakes on a commit, and re-reads soon when an older transaction that sends no notification held it back",
  // PostgreSQL: PGlite delivers no notification, and holds no transaction open beside another.
  ignore: ON_EMBEDDED,
}, async () => {
  const { db, sql } = await migratedDatabase();
  const seen: string[] = [];
  let cursor: string | undefined = await feedNow(sql);
  const consumer = startFeedConsumer({
    sql,
    cursor: { load: () => Promise.resolve(cursor), save: (_tx, next) => Promise.resolve(void (cursor = next)) },
    // So long that only the notification, and the re-reads it asks for, can explain a prompt change.
    pollIntervalMs: 60_000,
    onChange: (change) => void seen.push(change.entryId),
  });
  try {
    const doc = await insertRow(sql, "documents", newMessageId());
    const waitSeen = async (count: number) => {
      const deadline = Date.now() + 10_000;
      while (seen.length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      return seen.length;
    };
    await new Promise((resolve) => setTimeout(resolve, 300)); // LISTEN in place
    const first = await append(sql, doc);
    assert.equal(await waitSeen(1), 1, "woken by the commit's notification");
    // An unrelated transaction takes an id first (as the API's own writes do) and stays open.
    const held = await sql.reserve();
    try {
      await held`begin`;
      await held`select pg_current_xact_id()`;
      const second = await append(sql, doc);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(seen, [first], "held back while the older transaction is open");
      await held`commit`;
      // Its commit notifies nobody: the consumer's own re-reads find the change long before the poll interval.
      assert.equal(await waitSeen(2), 2);
      assert.deepEqual(seen, [first, second]);
    } finally {
      await held`rollback`.catch(() => {});
      held.release();
    }
  } finally {
    await consumer.stop();
    await sql.end();
    await db.drop();
  }
});
