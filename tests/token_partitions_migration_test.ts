/**
 * Migration 0007: consumed tokens move into day partitions, on a table that
 * already holds tokens, and every token a window still admits keeps refusing
 * another body.
 */
import assert from "node:assert/strict";
import type { Sql } from "postgres";
import { type TokenWrite, writeBatch } from "../src/db/write_batch_query.ts";
import { migrate } from "../src/db/migrate.ts";
import { withPartlyMigratedDatabase } from "./helpers/partly_migrated_database.ts";

/** A database deployed before 0007. */
function withOldTokens(fn: (sql: Sql) => Promise<void>): Promise<void> {
  return withPartlyMigratedDatabase((name) => name < "0007", fn);
}

/** A token consumed before 0007, as the service wrote it then, bound to `eventData`. */
async function insertOldToken(sql: Sql, token: string, signedAt: number, eventData: string): Promise<void> {
  await sql`
    insert into webhook_tokens (token, body_hash, signed_at)
    values (${token}, webhook_body_hash(${eventData}::text::jsonb), to_timestamp(${signedAt}))
  `;
}

function tokenRow(token: string, signedAt: number, eventData: string): TokenWrite {
  return { kind: "token", token, signedAt, binding: { eventData } };
}

Deno.test("0007 moves every token a window may admit into day partitions, and they still refuse another body", async () => {
  await withOldTokens(async (sql) => {
    const now = Math.floor(Date.now() / 1000);
    const tokens = [
      { token: "an-hour-old", signedAt: now - 3600, kept: true },
      { token: "signed-ahead", signedAt: now + 300, kept: true },
      { token: "eight-days-old", signedAt: now - 8 * 86_400, kept: true },
      { token: "twenty-days-old", signedAt: now - 20 * 86_400, kept: false },
    ];
    for (const { token, signedAt } of tokens) await insertOldToken(sql, token, signedAt, `{"token":"${token}"}`);

    assert.deepEqual(await migrate(sql), ["0007_token_day_partitions.sql"]);

    const rows = await sql`
      select token, slot, webhook_token_slot(signed_at) as expected, extract(epoch from signed_at)::int as signed_at
      from webhook_tokens order by token
    `;
    assert.deepEqual(
      rows.map((row) => row.token),
      tokens.filter((t) => t.kept).map((t) => t.token).sort(),
    );
    for (const row of rows) {
      assert.equal(row.slot, row.expected);
      assert.equal(row.slot, Math.floor(row.signed_at / 86_400) % 16);
    }
    for (const { token, signedAt } of tokens.filter((t) => t.kept)) {
      const [other] = await writeBatch(sql, [tokenRow(token, signedAt, `{"token":"${token}","forged":true}`)], 5_000);
      const [same] = await writeBatch(sql, [tokenRow(token, signedAt, `{"token":"${token}"}`)], 5_000);
      assert.equal(other.accepted, false, `${token}: a carried-over token took another body`);
      assert.equal(same.accepted, true, `${token}: a carried-over token refused its own body`);
    }
    const partitions = await sql`
      select count(*)::int as n from pg_inherits where inhparent = 'webhook_tokens'::regclass
    `;
    assert.equal(partitions[0].n, 16);
    const [{ key }] = await sql`
      select pg_get_constraintdef(oid) as key from pg_constraint
      where conrelid = 'webhook_tokens'::regclass and contype = 'p'
    `;
    assert.equal(key, "PRIMARY KEY (token, slot)");
    const left = await sql`select 1 from pg_class where relname like 'webhook_tokens_unpartitioned%'`;
    assert.equal(left.length, 0, "the old table is gone");
  });
});

Deno.test("after 0007, a revision from before it cannot write a token anywhere (it answers 503; Mailgun retries)", async () => {
  await withOldTokens(async (sql) => {
    await migrate(sql);
    // The statement the revision before 0007 ran, in its token part.
    await assert.rejects(
      () =>
        sql`
        insert into webhook_tokens as t (token, body_hash, signed_at)
        values ('old-revision', '\\x00'::bytea, now())
        on conflict (token) do update set body_hash = t.body_hash where t.body_hash = excluded.body_hash
      `,
      /no unique or exclusion constraint matching the ON CONFLICT specification/,
    );
    const [{ n }] = await sql`select count(*)::int as n from webhook_tokens`;
    assert.equal(n, 0);
  });
});
