/**
 * Migration 0005: the trail's key becomes (row, event id, UTC day), on a
 * trail that already holds rows, with webhooks writing while it runs.
 */
import assert from "node:assert/strict";
import type { Sql } from "postgres";
import { type BatchRow, writeBatch } from "../src/db/write_batch_query.ts";
import { migrate } from "../src/db/migrate.ts";
import { withPartlyMigratedDatabase } from "./helpers/partly_migrated_database.ts";
import { run } from "./helpers/subprocess.ts";
import type { TestDatabase } from "./helpers/test_database.ts";

/**
 * A database deployed before 0005, plus 0007: the token partitions today's
 * batch statement writes (it touches no table 0005 and 0006 change).
 */
function withOldTrail(fn: (sql: Sql, db: TestDatabase) => Promise<void>): Promise<void> {
  return withPartlyMigratedDatabase((name) => name < "0005" || name.startsWith("0007"), fn);
}

/** One webhook's row for the batch statement. */
function webhookRow(token: string, messageId: string, eventId: string, timestamp: number): BatchRow {
  return {
    kind: "event",
    token,
    signedAt: Math.floor(Date.now() / 1000),
    event: {
      type: "EMAIL_DELIVERED",
      status: "DELIVERED",
      eventId,
      eventTimestamp: timestamp,
      messageId,
      recipient: null,
      severity: null,
      reason: null,
      eventData: JSON.stringify({ id: eventId, event: "delivered", timestamp, token }),
    },
  };
}

async function appended(sql: Sql, row: BatchRow): Promise<number> {
  const [result] = await writeBatch(sql, [row], 5_000);
  return result.appended as number;
}

Deno.test("0005 keeps a trail's entries, then records a millisecond copy of a recorded event once", async () => {
  await withOldTrail(async (sql) => {
    const [doc] =
      await sql`insert into documents (email_message_id, email_status) values ('<m1@x>', 'SENT') returning id`;
    const [tenant] =
      await sql`insert into tenants (email_message_id, email_status) values ('m1@x', 'SENT') returning id`;
    const microseconds = 1_780_000_000.123456;
    assert.equal(await appended(sql, webhookRow("t1", "m1@x", "ev-1", microseconds)), 2);
    // The same id a day later is another event (ids are unique only within a day): kept under both keys.
    assert.equal(await appended(sql, webhookRow("t2", "m1@x", "ev-1", microseconds + 86_400)), 2);
    // Under the old key, a millisecond copy is another entry: what 0005 is for.
    const [{ n: before }] = await sql`select count(*)::int as n from email_events`;
    assert.equal(before, 4);

    assert.deepEqual(await migrate(sql), ["0005_trail_day_key.sql", "0006_unsettled_indexes.sql"]);
    const [{ n: after }] = await sql`select count(*)::int as n from email_events`;
    assert.equal(after, before, "no entry lost or merged");
    assert.equal(await appended(sql, webhookRow("t3", "m1@x", "ev-1", Math.floor(microseconds * 1000) / 1000)), 0);
    assert.equal(await appended(sql, webhookRow("t4", "m1@x", "ev-1", microseconds + 2 * 86_400)), 2);
    const indexes = await sql`
      select indexname from pg_indexes where tablename = 'email_events' and indexname like '%event%key' and indexname <> 'email_events_pkey' order by 1
    `;
    assert.deepEqual(indexes.map((row) => row.indexname), [
      "email_events_document_event_day_key",
      "email_events_tenant_event_day_key",
    ]);
    const [{ valid }] = await sql`
      select bool_and(i.indisvalid) as valid from pg_index i join pg_class c on c.oid = i.indexrelid
      where c.relname in ('email_events_document_event_day_key', 'email_events_tenant_event_day_key',
                          'documents_unsettled_idx', 'tenants_unsettled_idx')
    `;
    assert.equal(valid, true);
    assert.ok(Number(doc.id) > 0 && Number(tenant.id) > 0);
  });
});

Deno.test("0005 stops, changing nothing, on a trail that holds one event id twice on the same row and day", async () => {
  await withOldTrail(async (sql) => {
    await sql`insert into documents (email_message_id, email_status) values ('m2@x', 'SENT')`;
    // Legal under the old key: the same id at two timestamps of one day.
    assert.equal(await appended(sql, webhookRow("t1", "m2@x", "ev-2", 1_780_000_000.5)), 1);
    assert.equal(await appended(sql, webhookRow("t2", "m2@x", "ev-2", 1_780_000_100.5)), 1);
    await assert.rejects(() => migrate(sql), /0005_trail_day_key\.sql failed: .*1 event ids recorded twice/);
    const [{ n }] = await sql`select count(*)::int as n from email_events`;
    assert.equal(n, 2, "the trail is append-only: nothing was deleted");
    const [{ applied }] = await sql`select count(*)::int as applied from schema_migrations where name like '0005%'`;
    assert.equal(applied, 0);
    const built = await sql`select 1 from pg_class where relname = 'email_events_document_event_day_key'`;
    assert.equal(built.length, 0, "no index was built");
    // The old key still holds meanwhile.
    assert.equal(await appended(sql, webhookRow("t3", "m2@x", "ev-2", 1_780_000_000.5)), 0);
  });
});

Deno.test("webhooks stay exactly-once while 0005 and 0006 run", async () => {
  await withOldTrail(async (sql) => {
    const events = 60;
    for (let i = 0; i < events; i++) {
      await sql`insert into documents (email_message_id, email_status) values (${`mig-${i}@x`}, 'SENT')`;
    }
    let stop = false;
    // Each event is delivered twice (Mailgun retries), under two signatures, while the migration runs.
    const writer = (async () => {
      let i = 0;
      let round = 0;
      while (!stop || i < events) {
        const n = i % events;
        const timestamp = 1_780_000_000 + n + 0.654321;
        await Promise.all([
          writeBatch(sql, [webhookRow(`a-${round}-${n}`, `mig-${n}@x`, `ev-${n}`, timestamp)], 5_000),
          writeBatch(sql, [webhookRow(`b-${round}-${n}`, `mig-${n}@x`, `ev-${n}`, timestamp)], 5_000),
        ]);
        i++;
        if (i % events === 0) round++;
        if (stop && i >= events) break;
      }
      return i;
    })();
    const applied = await migrate(sql);
    stop = true;
    const written = await writer;
    assert.deepEqual(applied, ["0005_trail_day_key.sql", "0006_unsettled_indexes.sql"]);
    assert.ok(written >= events);
    const [{ entries, distinct }] = await sql`
      select count(*)::int as entries, count(distinct mailgun_event_id)::int as distinct from email_events
    `;
    assert.equal(distinct, Math.min(written, events));
    assert.equal(entries, distinct, "every event recorded once");
  });
});

Deno.test("reconcile refuses a database without the day key: a Logs API copy would be a second entry", async () => {
  await withOldTrail(async (_sql, db) => {
    const env = {
      DATABASE_URL: db.url,
      MAILGUN_API_KEY: "key-unused",
      MAILGUN_DOMAIN: "mg.comprobify.test",
      MAILGUN_API_BASE_URL: "http://127.0.0.1:9",
    };
    const refused = await run(["task", "reconcile", "--min-age", "0"], { env });
    assert.equal(refused.code, 1, refused.stdout);
    assert.match(
      refused.stderr,
      /lacks migrations 0005_trail_day_key\.sql, 0006_unsettled_indexes\.sql: run deno task migrate/,
    );
  });
});
