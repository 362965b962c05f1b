/**
 * Bounded state: consumed tokens are pruned by the service itself, and only
 * once the signature window can no longer admit them, so pruning never
 * re-opens a replay. Runs on both databases, like every test here.
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

/** Consumes a token directly, as the service would have `secondsAgo` ago, bound to `data`. */
async function insertToken(token: string, secondsAgo: number, data: unknown): Promise<void> {
  await svc.sql`
    insert into webhook_tokens (token, body_hash, signed_at, consumed_at)
    values (${token}, webhook_body_hash(${
    JSON.stringify(data)
  }::text::jsonb), now() - make_interval(secs => ${secondsAgo}),
            now() - make_interval(secs => ${secondsAgo}))
  `;
}

async function tokenExists(token: string): Promise<boolean> {
  const [row] = await svc.sql`select count(*)::int as n from webhook_tokens where token = ${token}`;
  return row.n === 1;
}

async function countTokens(): Promise<number> {
  const [row] = await svc.sql`select count(*)::int as n from webhook_tokens`;
  return row.n;
}

Deno.test("the service prunes expired tokens on its own timer, in chunks, leaving every token the window admits", async () => {
  const pruning = serviceTimers.filter((timer) => timer.kind === "interval" && timer.ms >= 60_000);
  assert.equal(pruning.length, 1, "the service must set exactly one long-period timer: the token pruner");
  assert.ok(pruning[0].ms <= 60 * 60 * 1000, "pruning must run at least hourly");
  // Instances on Deno Deploy may live less than one period: the first pruning comes soon after start.
  const first = serviceTimers.find((timer) => timer.kind === "timeout" && timer.callback === pruning[0].callback);
  assert.ok(first && first.ms <= 60_000, "the first pruning must come within a minute of start");
  const limit = pruneAfterSeconds();
  // Far more expired tokens than one pruning statement deletes (5,000), so chunking is exercised.
  await svc.sql`
    insert into webhook_tokens (token, body_hash, signed_at)
    select 'expired-' || n, '\\x00'::bytea, now() - make_interval(secs => ${limit} + 1 + n)
    from generate_series(1, 12000) as n
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
  const [expired] = await svc.sql`select count(*)::int as n from webhook_tokens where token like 'expired-%'`;
  assert.equal(expired.n, 0);
  for (const name of Object.keys(kept)) assert.ok(await tokenExists(`kept-${name}`), `pruned: ${name}`);
  assert.ok(svc.logs.some((line) => line.msg === "pruned consumed tokens" && line.deleted === 12000));
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
  // Signatures too old for the window, whose tokens were consumed back then.
  const expired: { signedAt: number; token: string; data: Record<string, unknown> }[] = [];
  for (const extra of [1, 3600, 30 * 86_400]) {
    const secondsAgo = pruneAfterSeconds() + extra;
    const token = newToken();
    const data = eventData("delivered", newMessageId());
    await insertToken(token, secondsAgo, data);
    expired.push({ signedAt: now - secondsAgo, token, data });
  }

  const stop = startTokenPruner(svc.sql, window(), { firstDelayMs: 20, intervalMs: 20 });
  try {
    for (let i = 0; i < 200 && (await Promise.all(expired.map((e) => tokenExists(e.token)))).some(Boolean); i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  } finally {
    stop();
  }

  for (const entry of expired) assert.ok(!(await tokenExists(entry.token)), "an expired token was not pruned");
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
  for (const { signedAt, token, data } of expired) {
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
    assert.ok(!(await tokenExists(token)), "a refused request consumed a token");
  }
});

Deno.test("pruning by age: a token goes if and only if no signature window (age + future skew + margin) admits it", async () => {
  const limit = pruneAfterSeconds();
  const offsets = [-300, 0, 1, 60, 86_399, 86_400, 86_401, limit - 5, limit + 5, limit + 3600, 10 * limit];
  for (const [i, secondsAgo] of offsets.entries()) await insertToken(`age-${i}`, secondsAgo, { i });
  let deleted = 0;
  for (let chunk = 2; chunk === 2;) {
    // A chunk of two: several rounds, as the service runs them.
    chunk = await pruneTokens(svc.sql, limit, 2);
    deleted += chunk;
  }
  for (const [i, secondsAgo] of offsets.entries()) {
    assert.equal(await tokenExists(`age-${i}`), secondsAgo < limit, `token signed ${secondsAgo} s ago`);
  }
  assert.equal(deleted, offsets.filter((secondsAgo) => secondsAgo > limit).length);
});
