/**
 * Bounded state: consumed tokens are pruned by the service itself, a day
 * partition at a time (migration 0008), and only once no signature window can
 * admit any day the partition holds, so pruning never re-opens a replay. The
 * pruner first moves the prune horizon (migration 0012) past what it empties,
 * and every instance refuses signatures older than it, whatever its own
 * window. Runs on both databases, except what needs a second session holding
 * a transaction open (real PostgreSQL only).
 */
import assert from "node:assert/strict";
import postgres, { type Sql } from "postgres";
import {
  SIGNATURE_MAX_AGE_SECONDS_LIMIT,
  SIGNATURE_MAX_FUTURE_SECONDS_LIMIT,
} from "../../src/config/service_config.ts";
import { connectPostgres } from "../../src/db/connect_postgres.ts";
import { migrate } from "../../src/db/migrate.ts";
import { PRUNE_MARGIN_SECONDS, pruneReach, startTokenPruner } from "../../src/pruning/token_pruner.ts";
import { pruneTokens, readTokenHorizon } from "../../src/db/prune_tokens_query.ts";
import { type BatchRowResult, type TokenWrite, writeBatch } from "../../src/db/write_batch_query.ts";
import { newToken, type SignatureBlock, signWebhook } from "../../src/mailgun/sign_webhook.ts";
import { eventData, post, signedBody } from "../helpers/mailgun.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/test_database.ts";
import { insertRow, newMessageId, rowState, startTestService, type TestService } from "../helpers/test_service.ts";

let svc: TestService;
/** The service's own timers, caught as it set them up. */
const serviceTimers: { kind: "interval" | "timeout"; callback: () => unknown; ms: number }[] = [];

Deno.test.beforeAll(async () => {
  // Catch the timers the service sets at start-up, to prove it prunes by itself
  // (no cron to remember) without waiting for its period.
  const realSetInterval = globalThis.setInterval;
  const realSetTimeout = globalThis.setTimeout;
  globalThis.setInterval = ((callback: () => unknown, ms?: number) => {
    serviceTimers.push({ kind: "interval", callback, ms: ms ?? 0 });
    return realSetInterval(callback, ms);
  }) as typeof setInterval;
  globalThis.setTimeout = ((callback: () => unknown, ms?: number) => {
    serviceTimers.push({ kind: "timeout", callback, ms: ms ?? 0 });
    return realSetTimeout(callback, ms);
  }) as typeof setTimeout;
  try {
    svc = await startTestService();
  } finally {
    globalThis.setInterval = realSetInterval;
    globalThis.setTimeout = realSetTimeout;
  }
});

Deno.test.afterAll(async () => {
  await svc.close();
});

function window() {
  return { maxAgeSeconds: svc.config.signatureMaxAgeSeconds, maxFutureSeconds: svc.config.signatureMaxFutureSeconds };
}

/** Tokens signed longer ago than this may be pruned: the window (age and future skew) plus a margin for clocks. */
function pruneAfterSeconds(): number {
  return window().maxAgeSeconds + window().maxFutureSeconds + PRUNE_MARGIN_SECONDS;
}

/**
 * How far ahead pruning leaves partitions alone: tokens may be signed in the
 * future (clock skew), as far as ANY instance's window allows, not this one's.
 */
function pruneAheadSeconds(): number {
  return SIGNATURE_MAX_FUTURE_SECONDS_LIMIT + PRUNE_MARGIN_SECONDS;
}

/** Consumes a token directly, as the service would have `secondsAgo` ago, bound to `data`. */
async function insertToken(token: string, secondsAgo: number, data: unknown, sql: Sql = svc.sql): Promise<void> {
  await sql`
    insert into mailgun_webhook.tokens (token, body_hash, signed_at, consumed_at, slot)
    select ${token}, mailgun_webhook.body_hash(${
    JSON.stringify(data)
  }::text::jsonb), t, t, mailgun_webhook.token_slot(t)
    from (select now() - make_interval(secs => ${secondsAgo})) s(t)
  `;
}

const DAY_SECONDS = 86_400;
/** The partitions of mailgun_webhook.tokens: one per UTC day of signature, modulo this. */
const SLOTS = 16;

/**
 * Whether a token signed `secondsAgo` before `now` (Unix seconds) sits in a
 * partition that some window still reaches: written here from the rule, not
 * from the migration's SQL.
 */
function inLivePartition(now: number, secondsAgo: number): boolean {
  const slot = (day: number) => ((day % SLOTS) + SLOTS) % SLOTS;
  const first = Math.floor((now - pruneAfterSeconds()) / DAY_SECONDS);
  const last = Math.floor((now + pruneAheadSeconds()) / DAY_SECONDS);
  const live = new Set<number>();
  for (let day = first; day <= last; day++) live.add(slot(day));
  return live.has(slot(Math.floor((now - secondsAgo) / DAY_SECONDS)));
}

async function databaseNow(sql: Sql = svc.sql): Promise<number> {
  const [row] = await sql`select extract(epoch from now())::float8 as now`;
  return row.now;
}

async function tokenExists(token: string, sql: Sql = svc.sql): Promise<boolean> {
  const [row] = await sql`select count(*)::int as n from mailgun_webhook.tokens where token = ${token}`;
  return row.n === 1;
}

async function countTokens(): Promise<number> {
  const [row] = await svc.sql`select count(*)::int as n from mailgun_webhook.tokens`;
  return row.n;
}

Deno.test("the service prunes expired days of tokens on its own timer, leaving every token the window admits", async () => {
  const pruning = serviceTimers.filter((timer) => timer.kind === "interval" && timer.ms >= 60_000);
  assert.equal(pruning.length, 1, "the service must set exactly one long-period timer: the token pruner");
  assert.ok(pruning[0].ms <= 60 * 60 * 1000, "pruning must run at least hourly");
  // Instances on Deno Deploy may live less than one period: the first pruning comes soon after start.
  const first = serviceTimers.find((timer) => timer.kind === "timeout" && timer.callback === pruning[0].callback);
  assert.ok(first && first.ms <= 60_000, "the first pruning must come within a minute of start");
  const limit = pruneAfterSeconds();
  // A day past the limit and beyond: partitions no window reaches.
  await svc.sql`
    insert into mailgun_webhook.tokens (token, body_hash, signed_at, slot)
    select 'expired-' || n, '\\x00'::bytea, t, mailgun_webhook.token_slot(t)
    from generate_series(1, 12000) as n,
         lateral (select now() - make_interval(secs => ${limit + DAY_SECONDS}::int + n * 7)) s(t)
  `;
  const kept: Record<string, number> = {
    "just admitted (age limit - 1 min)": window().maxAgeSeconds - 60,
    "just refused by age, inside the margin": window().maxAgeSeconds + 60,
    "at the edge of the margin (limit - 1 min)": limit - 60,
    "fresh": 1,
    "signed in the future (clock skew)": -window().maxFutureSeconds,
  };
  for (const [name, secondsAgo] of Object.entries(kept)) await insertToken(`kept-${name}`, secondsAgo, { name });
  const before = await countTokens();
  await pruning[0].callback();
  // The callback runs asynchronously; wait until the expired tokens are gone.
  for (let i = 0; i < 200 && (await countTokens()) > before - 12000; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(await countTokens(), before - 12000);
  const [expired] = await svc.sql`select count(*)::int as n from mailgun_webhook.tokens where token like 'expired-%'`;
  assert.equal(expired.n, 0);
  for (const name of Object.keys(kept)) assert.ok(await tokenExists(`kept-${name}`), `pruned: ${name}`);
  const line = svc.logs.find((line) => line.msg === "pruned consumed tokens");
  assert.ok(line && Number(line.partitions) >= 1 && typeof line.ms === "number");
});

Deno.test("pruning never re-opens a replay: kept tokens stay refused for another body; pruned ones are refused by the window", async () => {
  const now = Math.floor(Date.now() / 1000);
  const { maxAgeSeconds, maxFutureSeconds } = window();
  // Signatures the window still admits, consumed through the service itself.
  const admitted: { signedAt: number; messageId: string; id: number; data: unknown; signature: SignatureBlock }[] = [];
  for (const signedAt of [now - maxAgeSeconds + 120, now - 12 * 3600, now - 60, now, now + maxFutureSeconds - 60]) {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const data = eventData("delivered", messageId);
    const { body, signature } = signedBody(svc.key, data, { timestamp: String(signedAt) });
    assert.equal((await post(svc.url, body)).status, 200);
    admitted.push({ signedAt, messageId, id, data, signature });
  }
  // Signatures too old for the window, whose tokens were consumed back then:
  // just past the limit (their day's partition is still reached: kept, for
  // now) and a day and more past it (pruned).
  const expired: { signedAt: number; token: string; data: Record<string, unknown>; prunable: boolean }[] = [];
  const dbNow = await databaseNow();
  for (const extra of [1, 3600, 86_400 + 1, 2 * 86_400, 30 * 86_400]) {
    const secondsAgo = pruneAfterSeconds() + extra;
    const token = newToken();
    const data = eventData("delivered", newMessageId());
    await insertToken(token, secondsAgo, data);
    expired.push({ signedAt: now - secondsAgo, token, data, prunable: !inLivePartition(dbNow, secondsAgo) });
  }
  const prunable = expired.filter((e) => e.prunable);
  assert.ok(prunable.length >= 2);

  const stop = startTokenPruner(svc.sql, window(), { firstDelayMs: 20, intervalMs: 20 });
  try {
    for (let i = 0; i < 200 && (await Promise.all(prunable.map((e) => tokenExists(e.token)))).some(Boolean); i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  } finally {
    stop();
  }

  for (const entry of prunable) assert.ok(!(await tokenExists(entry.token)), "an expired token was not pruned");
  for (const { signedAt, messageId, id, data, signature } of admitted) {
    // The same signature with another event: still a replay, still refused.
    const forged = signedBody(svc.key, eventData("complained", messageId), signature);
    const replay = await post(svc.url, forged.body);
    assert.equal(replay.status, 401, `a kept token (signed ${now - signedAt} s ago) was re-opened`);
    assert.equal(svc.logs.at(-1)!.outcome, "replayed");
    // The same signature with its own event: a harmless re-delivery.
    const again = await post(svc.url, (signedBody(svc.key, data, signature)).body);
    assert.equal(again.status, 200);
    assert.equal(again.json.duplicate, true);
    const state = await rowState(svc.sql, "documents", id);
    assert.equal(state.status, "DELIVERED");
    assert.equal(state.events.length, 1);
  }
  for (const { signedAt, token, data, prunable } of expired) {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const signature = signWebhook(svc.key, String(signedAt), token);
    for (const body of [eventData("complained", messageId), data]) {
      const response = await post(svc.url, JSON.stringify({ signature, "event-data": body }));
      assert.equal(response.status, 401, "a pruned token's signature was accepted");
      assert.equal(svc.logs.at(-1)!.outcome, "unauthorized");
      assert.match(String(svc.logs.at(-1)!.reason), /old/);
    }
    assert.equal((await rowState(svc.sql, "documents", id)).events.length, 0);
    // A pruned token stays gone; a kept one stays as it was.
    assert.equal(await tokenExists(token), !prunable, "a refused request consumed a token");
  }
});

Deno.test("pruning by day: a token goes if and only if no window (age + future skew + margin) reaches its day's partition", async () => {
  const limit = pruneAfterSeconds();
  const offsets = [
    -pruneAheadSeconds() + 5,
    -300,
    0,
    1,
    60,
    86_399,
    86_400,
    86_401,
    limit - 5,
    limit + 5,
    limit + 3600,
    limit + DAY_SECONDS,
    limit + 2 * DAY_SECONDS,
    limit + 5 * DAY_SECONDS,
    10 * limit,
    SLOTS * DAY_SECONDS,
  ];
  for (const [i, secondsAgo] of offsets.entries()) await insertToken(`day-${i}`, secondsAgo, { i });
  const now = await databaseNow();
  await pruneTokens(svc.sql, limit, pruneAheadSeconds());
  for (const [i, secondsAgo] of offsets.entries()) {
    const kept = await tokenExists(`day-${i}`);
    assert.equal(kept, inLivePartition(now, secondsAgo), `token signed ${secondsAgo} s ago`);
    if (secondsAgo < limit) assert.ok(kept, `pruned a token the window admits (signed ${secondsAgo} s ago)`);
  }
  // A day past the limit is always out of reach (the default window and the widest skew span at most 4 of the 16 days).
  assert.ok(!(await tokenExists(`day-${offsets.indexOf(limit + 2 * DAY_SECONDS)}`)));
  // Pruning again finds nothing more to empty.
  assert.equal(await pruneTokens(svc.sql, limit, pruneAheadSeconds()), 0);
});

Deno.test("pruning refuses a window so wide that no partition is out of it", async () => {
  await assert.rejects(() => pruneTokens(svc.sql, 15 * DAY_SECONDS, DAY_SECONDS), /leaves no partition/);
});

/** The default window: what an instance without SIGNATURE_MAX_* set admits. */
const DEFAULT_WINDOW = { maxAgeSeconds: DAY_SECONDS, maxFutureSeconds: 300 };
/** Keeps a test service's own pruner away, where the test prunes by hand. */
const NO_PRUNER = { TOKEN_PRUNE_FIRST_DELAY_MS: String(DAY_SECONDS * 1000) };

/** A fresh, migrated database, for tests that need the horizon where they leave it. */
async function freshDatabase(): Promise<{ db: TestDatabase; sql: Sql; close(): Promise<void> }> {
  const db = await createTestDatabase();
  const sql = connectPostgres(db.url, { max: db.poolMax, connectTimeoutMs: 5000, prepare: true });
  await migrate(sql);
  return {
    db,
    sql,
    async close() {
      await sql.end();
      await db.drop();
    },
  };
}

/** A token spent alone, as an ignored event's, signed at `signedAt` (Unix seconds). */
function tokenRow(token: string, signedAt: number): TokenWrite {
  return { kind: "token", token, signedAt, binding: { bodyHash: "ab".repeat(32) } };
}

/** The token statement's answer for token rows, as the batch writer reads it. */
async function spend(sql: Sql, rows: TokenWrite[]): Promise<BatchRowResult[]> {
  const result = await writeBatch(sql, rows, 1000);
  return result.map((row) => ({
    accepted: row.accepted as boolean,
    expired: row.expired as boolean,
    matched: row.matched as number,
    appended: row.appended as number,
  }));
}

/** The start of the UTC day of `seconds` (Unix seconds). */
function dayStart(seconds: number): number {
  return Math.floor(seconds / DAY_SECONDS) * DAY_SECONDS;
}

async function waitFor(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`Timed out waiting for ${what}.`);
}

Deno.test("two instances, two windows, one horizon: once the default one prunes, the 7-day one refuses (401) a 3-day-old signature with another body", async () => {
  const { db, sql, close } = await freshDatabase();
  const key = `shared-key-${crypto.randomUUID()}`;
  const wide = await startTestService(
    { MAILGUN_WEBHOOK_SIGNING_KEY: key, SIGNATURE_MAX_AGE_SECONDS: String(7 * DAY_SECONDS), ...NO_PRUNER },
    db,
  );
  let narrow: TestService | undefined;
  try {
    const signedAt = String(Math.floor(Date.now() / 1000) - 3 * DAY_SECONDS);
    // Three captured signatures the 7-day window admits: an applied event, an ignored one, an unmatched one.
    const messageId = newMessageId();
    const id = await insertRow(sql, "documents", messageId);
    const captured = [
      signedBody(key, eventData("delivered", messageId), { timestamp: signedAt }),
      signedBody(key, eventData("opened", messageId), { timestamp: signedAt }),
      signedBody(key, eventData("delivered", newMessageId()), { timestamp: signedAt }),
    ];
    const outcomes = [];
    for (const { body } of captured) {
      const response = await post(wide.url, body);
      assert.equal(response.status, 200);
      outcomes.push(response.json.outcome);
    }
    assert.deepEqual(outcomes, ["applied", "ignored", "unmatched"]);

    // The default instance starts and prunes on its own timer: the 3-day-old day is out of its window.
    narrow = await startTestService({ MAILGUN_WEBHOOK_SIGNING_KEY: key, TOKEN_PRUNE_FIRST_DELAY_MS: "0" }, db);
    await waitFor(async () => !(await tokenExists(captured[0].signature.token, sql)), "the default instance's pruning");
    const now = await databaseNow(sql);
    assert.equal(await readTokenHorizon(sql), dayStart(now - pruneReach(DEFAULT_WINDOW).olderThanSeconds));
    for (const { signature } of captured) assert.ok(!(await tokenExists(signature.token, sql)));

    // The same signatures with another body, at the 7-day instance: refused as too old, never applied.
    const other = newMessageId();
    const otherId = await insertRow(sql, "documents", other);
    for (const [i, { signature }] of captured.entries()) {
      for (
        const data of [eventData("complained", messageId), eventData("delivered", other), eventData("opened", other)]
      ) {
        const replay = await post(wide.url, signedBody(key, data, signature).body);
        assert.equal(replay.status, 401, `captured signature ${i} carried another body after the prune`);
        assert.match(String(replay.json.error), /older than/);
      }
    }
    const state = await rowState(sql, "documents", id);
    assert.equal(state.status, "DELIVERED");
    assert.equal(state.events.length, 1);
    assert.equal((await rowState(sql, "documents", otherId)).events.length, 0);
    for (const { signature } of captured) {
      assert.ok(!(await tokenExists(signature.token, sql)), "a refusal spent a token");
    }

    // Signatures inside the horizon still work on both, and a fresh one is still bound to its body.
    const fresh = signedBody(key, eventData("delivered", other));
    assert.equal((await post(wide.url, fresh.body)).status, 200);
    const forged = await post(narrow.url, signedBody(key, eventData("complained", other), fresh.signature).body);
    assert.equal(forged.status, 401);
    assert.match(String(forged.json.error), /already used/);
  } finally {
    await narrow?.close();
    await wide.close();
    await close();
  }
});

Deno.test("one service whose window is raised after a prune refuses (401) a signature older than the horizon, whatever its body", async () => {
  const { db, sql, close } = await freshDatabase();
  const key = `shared-key-${crypto.randomUUID()}`;
  try {
    const messageId = newMessageId();
    const id = await insertRow(sql, "documents", messageId);
    // Consumed 3 days ago, when its signature was fresh.
    const data = eventData("delivered", messageId);
    const token = newToken();
    await insertToken(token, 3 * DAY_SECONDS, data, sql);
    const [{ signed_at: signedAt }] = await sql`
      select extract(epoch from signed_at)::bigint::text as signed_at from mailgun_webhook.tokens where token = ${token}
    `;
    const signature = signWebhook(key, signedAt, token);

    const before = await startTestService({ MAILGUN_WEBHOOK_SIGNING_KEY: key, TOKEN_PRUNE_FIRST_DELAY_MS: "0" }, db);
    try {
      await waitFor(async () => !(await tokenExists(token, sql)), "the pruning");
      assert.equal((await post(before.url, signedBody(key, data, signature).body)).status, 401);
    } finally {
      await before.close();
    }
    const raised = await startTestService(
      { MAILGUN_WEBHOOK_SIGNING_KEY: key, SIGNATURE_MAX_AGE_SECONDS: String(7 * DAY_SECONDS), ...NO_PRUNER },
      db,
    );
    try {
      for (const body of [eventData("complained", messageId), data]) {
        const response = await post(raised.url, signedBody(key, body, signature).body);
        assert.equal(response.status, 401, "a pruned token's signature was let in by the raised window");
        assert.match(String(response.json.error), /older than/);
        assert.equal(raised.logs.at(-1)!.outcome, "unauthorized");
      }
      assert.equal((await rowState(sql, "documents", id)).events.length, 0);
      assert.ok(!(await tokenExists(token, sql)));
    } finally {
      await raised.close();
    }
  } finally {
    await close();
  }
});

Deno.test("the horizon moves only when a pruning empties something, never backwards, and the token statement refuses exactly what is before it", async () => {
  const { sql, close } = await freshDatabase();
  try {
    const narrowest = pruneReach({ maxAgeSeconds: 60, maxFutureSeconds: 0 });
    const byDefault = pruneReach(DEFAULT_WINDOW);
    const widest = pruneReach({
      maxAgeSeconds: SIGNATURE_MAX_AGE_SECONDS_LIMIT,
      maxFutureSeconds: SIGNATURE_MAX_FUTURE_SECONDS_LIMIT,
    });
    assert.equal(await readTokenHorizon(sql), -Infinity);
    // Nothing to empty: the horizon stays where it is, even for the narrowest window.
    assert.equal(await pruneTokens(sql, narrowest.olderThanSeconds, narrowest.aheadSeconds), 0);
    assert.equal(await readTokenHorizon(sql), -Infinity);

    await insertToken("three-days", 3 * DAY_SECONDS, {}, sql);
    assert.equal(await pruneTokens(sql, byDefault.olderThanSeconds, byDefault.aheadSeconds), 1);
    const now = await databaseNow(sql);
    const horizon = await readTokenHorizon(sql);
    assert.equal(horizon, dayStart(now - byDefault.olderThanSeconds));

    // The token statement: before the horizon, expired (nothing written); at it, accepted.
    const [before, at] = await spend(sql, [tokenRow("before", horizon - 1), tokenRow("at", horizon)]);
    assert.deepEqual([before.accepted, before.expired], [false, true]);
    assert.deepEqual([at.accepted, at.expired], [true, false]);
    assert.ok(!(await tokenExists("before", sql)));

    // A wider window prunes what it may, and leaves the horizon where the narrower one put it.
    await insertToken("twelve-days", 12 * DAY_SECONDS, {}, sql);
    assert.equal(await pruneTokens(sql, widest.olderThanSeconds, widest.aheadSeconds), 1);
    assert.ok(!(await tokenExists("twelve-days", sql)));
    assert.equal(await readTokenHorizon(sql), horizon);
    const [{ pruned_before: moved }] = await sql`
      select extract(epoch from mailgun_webhook.advance_token_horizon(${widest.olderThanSeconds}, ${widest.aheadSeconds}))::float8
        as pruned_before
    `;
    assert.equal(moved, horizon);

    // A narrower one moves it forward (emptying the day of "at" too).
    await insertToken("two-days", 2 * DAY_SECONDS, {}, sql);
    assert.ok((await pruneTokens(sql, narrowest.olderThanSeconds, narrowest.aheadSeconds)) >= 1);
    assert.ok(!(await tokenExists("two-days", sql)));
    const later = await readTokenHorizon(sql);
    assert.equal(later, dayStart((await databaseNow(sql)) - narrowest.olderThanSeconds));
    assert.ok(later > horizon);
  } finally {
    await close();
  }
});

Deno.test("the widest configurable window still leaves partitions to prune, and keeps every day any window reaches ahead", async () => {
  const { sql, close } = await freshDatabase();
  try {
    const widest = pruneReach({
      maxAgeSeconds: SIGNATURE_MAX_AGE_SECONDS_LIMIT,
      maxFutureSeconds: SIGNATURE_MAX_FUTURE_SECONDS_LIMIT,
    });
    const spanDays = Math.ceil((widest.olderThanSeconds + widest.aheadSeconds) / DAY_SECONDS) + 1;
    assert.ok(spanDays < SLOTS, `the widest window spans ${spanDays} of ${SLOTS} days`);
    // Any instance's future skew is kept ahead, even by a pruner whose own is 0.
    const own = pruneReach({ maxAgeSeconds: 60, maxFutureSeconds: 0 });
    assert.equal(own.aheadSeconds, SIGNATURE_MAX_FUTURE_SECONDS_LIMIT + PRUNE_MARGIN_SECONDS);
    await insertToken("ahead", -SIGNATURE_MAX_FUTURE_SECONDS_LIMIT, {}, sql);
    await insertToken("behind", (spanDays + 1) * DAY_SECONDS, {}, sql);
    assert.ok((await pruneTokens(sql, widest.olderThanSeconds, widest.aheadSeconds)) >= 1);
    assert.ok(!(await tokenExists("behind", sql)));
    assert.ok(await tokenExists("ahead", sql));
    await pruneTokens(sql, own.olderThanSeconds, own.aheadSeconds);
    assert.ok(await tokenExists("ahead", sql), "a token signed within the widest future skew was pruned");
  } finally {
    await close();
  }
});

/** Whether some session waits for `mode` on mailgun_webhook.tokens. */
async function waitingFor(sql: Sql, mode: string): Promise<boolean> {
  const [row] = await sql`
    select exists (
      select 1 from pg_locks
      where relation = 'mailgun_webhook.tokens'::regclass and mode = ${mode} and not granted
    ) as waiting
  `;
  return row.waiting;
}

Deno.test({
  name:
    "the race is closed: moving the horizon waits out token statements in flight, and those that start meanwhile read the new horizon (PostgreSQL)",
  ignore: !Deno.env.get("DATABASE_URL"),
  fn: async () => {
    const { db, sql, close } = await freshDatabase();
    const holder = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      const reach = pruneReach(DEFAULT_WINDOW);
      const threeDaysAgo = Math.floor(await databaseNow(sql)) - 3 * DAY_SECONDS;
      await insertToken("seed", 3 * DAY_SECONDS, {}, sql);
      const conn = await holder.reserve();
      await conn`begin`;
      // A webhook's statement that read the old horizon and inserted its token, not committed yet.
      const [held] = await spend(conn, [tokenRow("held", threeDaysAgo)]);
      assert.deepEqual([held.accepted, held.expired], [true, false]);
      const pruning = pruneTokens(sql, reach.olderThanSeconds, reach.aheadSeconds);
      await waitFor(() => waitingFor(sql, "ShareLock"), "the pruning to wait for the open insert");
      assert.equal(await readTokenHorizon(sql), -Infinity, "the horizon moved before the insert ended");
      // A replay that arrives now waits behind the pruning, and then reads the new horizon.
      const late = spend(sql, [tokenRow("late", threeDaysAgo)]);
      await waitFor(() => waitingFor(sql, "RowExclusiveLock"), "the late statement to queue");
      await conn`commit`;
      conn.release();
      assert.equal(await pruning, 1);
      const [lateResult] = await late;
      assert.deepEqual([lateResult.accepted, lateResult.expired], [false, true]);
      assert.ok(!(await tokenExists("late", sql)));
      // The held token went with its partition; its signature is refused from now on, not re-opened.
      assert.ok(!(await tokenExists("held", sql)));
      const [replay] = await spend(sql, [tokenRow("held", threeDaysAgo)]);
      assert.deepEqual([replay.accepted, replay.expired], [false, true]);
    } finally {
      await holder.end();
      await close();
    }
  },
});

Deno.test({
  name: "an idle pruning, and one whose horizon is already set, never wait for token statements in flight (PostgreSQL)",
  ignore: !Deno.env.get("DATABASE_URL"),
  fn: async () => {
    const { db, sql, close } = await freshDatabase();
    const holder = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      const reach = pruneReach(DEFAULT_WINDOW);
      await insertToken("seed", 3 * DAY_SECONDS, {}, sql);
      assert.equal(await pruneTokens(sql, reach.olderThanSeconds, reach.aheadSeconds), 1);
      const conn = await holder.reserve();
      await conn`begin`;
      const [held] = await spend(conn, [tokenRow("held", Math.floor(await databaseNow(sql)))]);
      assert.ok(held.accepted);
      try {
        // Idle: reads only. Each would otherwise wait for the open insert, up to its 2 s lock timeout.
        let started = performance.now();
        assert.equal(await pruneTokens(sql, reach.olderThanSeconds, reach.aheadSeconds), 0);
        assert.ok(performance.now() - started < 1000, "an idle pruning waited for a token insert");
        // A partition the horizon already covers: emptied without the share lock.
        await insertToken("covered", 3 * DAY_SECONDS, {}, sql);
        started = performance.now();
        assert.equal(await pruneTokens(sql, reach.olderThanSeconds, reach.aheadSeconds), 1);
        assert.ok(performance.now() - started < 1000, "emptying a covered partition waited for a token insert");
      } finally {
        await conn`commit`;
        conn.release();
      }
      assert.ok(await tokenExists("held", sql));
    } finally {
      await holder.end();
      await close();
    }
  },
});
