/**
 * Bounded state: consumed tokens are pruned by the service itself, a day
 * partition at a time (migration 0007), and only once no signature window can
 * admit any day the partition holds, so pruning never re-opens a replay. Runs
 * on both databases, like every test here.
 */
import assert from "node:assert/strict";
import { PRUNE_MARGIN_SECONDS, startTokenPruner } from "../src/pruning/token_pruner.ts";
import { pruneTokens } from "../src/db/prune_tokens_query.ts";
import { newToken, type SignatureBlock, signWebhook } from "../src/mailgun/sign_webhook.ts";
import { eventData, post, signedBody } from "./helpers/mailgun.ts";
import { insertRow, newMessageId, rowState, startTestService, type TestService } from "./helpers/test_service.ts";

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

/** How far ahead pruning leaves partitions alone: tokens may be signed in the future (clock skew). */
function pruneAheadSeconds(): number {
  return window().maxFutureSeconds + PRUNE_MARGIN_SECONDS;
}

/** Consumes a token directly, as the service would have `secondsAgo` ago, bound to `data`. */
async function insertToken(token: string, secondsAgo: number, data: unknown): Promise<void> {
  await svc.sql`
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

async function databaseNow(): Promise<number> {
  const [row] = await svc.sql`select extract(epoch from now())::float8 as now`;
  return row.now;
}

async function tokenExists(token: string): Promise<boolean> {
  const [row] = await svc.sql`select count(*)::int as n from mailgun_webhook.tokens where token = ${token}`;
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
  // A day past the limit is always out of reach (the default window spans at most 3 of the 16 days).
  assert.ok(!(await tokenExists(`day-${offsets.indexOf(limit + 2 * DAY_SECONDS)}`)));
  // Pruning again finds nothing more to empty.
  assert.equal(await pruneTokens(svc.sql, limit, pruneAheadSeconds()), 0);
});

Deno.test("pruning refuses a window so wide that no partition is out of it", async () => {
  await assert.rejects(() => pruneTokens(svc.sql, 15 * DAY_SECONDS, DAY_SECONDS), /leaves no partition/);
});
