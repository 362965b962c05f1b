/**
 * Reconcile through Mailgun's Logs API, end to end: a real database
 * (PostgreSQL when DATABASE_URL is set, else the embedded one), the real
 * webhook service, and a local fake of the Logs API (tests/helpers/fake_mailgun_logs.ts).
 */
import assert from "node:assert/strict";
import { createMailgunLogsClient, LOGS_PAGE_LIMIT } from "../../src/reconcile/mailgun_logs_client.ts";
import { messageSentAt } from "../../src/reconcile/message_sent_at.ts";
import { reconcile, type ReconcileOptions } from "../../src/reconcile/reconcile.ts";
import { MailgunApiError } from "../../src/reconcile/reconcile_errors.ts";
import { type FakeMailgunLogs, startFakeMailgunLogs } from "../helpers/fake_mailgun_logs.ts";
import { eventData, post, signedBody } from "../helpers/mailgun.ts";
import { insertRow, newMessageId, rowState, startTestService, type TestService } from "../helpers/test_service.ts";

const WIDE_OPEN: ReconcileOptions = { minAgeMs: 0, maxAgeMs: 30 * 86_400_000, limit: 1000 };

async function withSetup(
  fn: (svc: TestService, mailgun: FakeMailgunLogs) => Promise<void>,
  fake: { pageSize?: number; omitLastNext?: boolean } = { pageSize: 2 },
): Promise<void> {
  const svc = await startTestService();
  const mailgun = startFakeMailgunLogs(fake);
  try {
    await fn(svc, mailgun);
  } finally {
    await mailgun.close();
    await svc.close();
  }
}

function client(
  mailgun: FakeMailgunLogs,
  apiKey = mailgun.apiKey,
  retries: { reason: string; delayMs: number }[] = [],
) {
  return createMailgunLogsClient({
    baseUrl: mailgun.url,
    apiKey,
    domain: mailgun.domain,
    // Short waits, but long enough that a Retry-After of 1 s shows.
    backoff: {
      maxAttempts: 4,
      baseDelayMs: 5,
      maxDelayMs: 2_000,
      timeoutMs: 5_000,
      onRetry: (reason, delayMs) => void retries.push({ reason, delayMs }),
    },
  });
}

/** An event with a timestamp to the microsecond, as webhooks carry it (the Logs copy is truncated to the ms). */
function microsecondEvent(kind: "delivered" | "temporary" | "complained", messageId: string, agoSeconds = 120) {
  return eventData(kind, messageId, { timestamp: Math.floor(Date.now() / 1000) - agoSeconds + 0.123456 });
}

/** A Mailgun Message-ID sent `agoMs` ago: it starts with the UTC send time. */
function datedMessageId(agoMs: number): string {
  const stamp = new Date(Date.now() - agoMs).toISOString().replace(/[-:T]/g, "").slice(0, 14);
  return `<${stamp}.${crypto.randomUUID().slice(0, 16)}@mg.comprobify.test>`;
}

Deno.test("Logs API: the window is read page by page through 429 (Retry-After honoured) and 5xx, and matched locally", async () => {
  await withSetup(async (svc, mailgun) => {
    const a = newMessageId();
    const b = newMessageId();
    const unknown = newMessageId();
    const docA = await insertRow(svc.sql, "documents", a);
    const tenantB = await insertRow(svc.sql, "tenants", b);
    await insertRow(svc.sql, "documents", unknown);
    const other = newMessageId(); // a message of the domain that is no row of ours
    mailgun.add(
      microsecondEvent("temporary", a, 500),
      eventData("opened", a), // not asked for
      microsecondEvent("delivered", a, 400),
      microsecondEvent("delivered", other, 300),
      microsecondEvent("complained", b, 200),
    );
    mailgun.faults.push({ status: 429, retryAfter: "1" }, { status: 503 });
    const retries: { reason: string; delayMs: number }[] = [];
    const lines: string[] = [];
    const summary = await reconcile(svc.sql, client(mailgun, undefined, retries), WIDE_OPEN, (l) => lines.push(l));

    assert.deepEqual([summary.rowsChecked, summary.messageIds], [3, 3]);
    assert.deepEqual([summary.eventsScanned, summary.eventsFound, summary.applied], [4, 3, 3]);
    assert.deepEqual([summary.duplicates, summary.unknownToMailgun, summary.failed], [0, 1, 0]);
    assert.deepEqual(retries.map((r) => r.reason), ["429", "503"]);
    assert.equal(retries[0].delayMs, 1000, "Retry-After: 1 is waited for");
    // 429, 503, then pages of 2, 2 and the empty page the last next token leads to.
    assert.deepEqual(mailgun.requests.map((r) => r.status), [429, 503, 200, 200, 200]);
    assert.equal(summary.requests, 5);

    const stateA = await rowState(svc.sql, "documents", docA);
    assert.equal(stateA.status, "DELIVERED");
    assert.deepEqual(stateA.events.map((e) => e.type).sort(), ["EMAIL_DELIVERED", "EMAIL_TEMP_FAILED"]);
    assert.equal((await rowState(svc.sql, "tenants", tenantB)).status, "COMPLAINED");
    assert.ok(lines.some((l) => l.includes(unknown.slice(1, -1)) && l.includes("no events")), lines.join("\n"));

    // The documented query: RFC 2822 times, the three events, the domain filter, oldest first, then the cursor.
    const [first, , second] = mailgun.requests.map((r) => r.body);
    assert.match(String(first.start), /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
    assert.deepEqual(first.events, ["delivered", "failed", "complained"]);
    assert.deepEqual(first.filter, {
      AND: [{ attribute: "domain", comparator: "=", values: [{ label: mailgun.domain, value: mailgun.domain }] }],
    });
    assert.deepEqual(first.pagination, { sort: "timestamp:asc", limit: LOGS_PAGE_LIMIT });
    assert.equal(first.include_subaccounts, true);
    assert.equal((second.pagination as { token?: string }).token, undefined);
    const third = mailgun.requests[3].body.pagination as { token?: string };
    assert.equal(typeof third.token, "string");
  });
});

Deno.test("Logs API: requests per run grow with the events of the window, not with the rows looked for", async () => {
  await withSetup(async (svc, mailgun) => {
    const ours = newMessageId();
    await insertRow(svc.sql, "documents", ours);
    const events = 250;
    for (let i = 0; i < events - 1; i++) mailgun.add(microsecondEvent("delivered", newMessageId(), 600 - i));
    mailgun.add(microsecondEvent("delivered", ours, 10));
    const one = await reconcile(svc.sql, client(mailgun), WIDE_OPEN);
    // Pages of 100, 100, 50, then the empty page: ceil(E / 100) + 1 when every page carries a next token.
    assert.equal(one.eventsScanned, events);
    assert.equal(one.requests, Math.ceil(events / LOGS_PAGE_LIMIT) + 1);
    assert.equal(one.applied, 1);

    for (let i = 0; i < 40; i++) await insertRow(svc.sql, "documents", newMessageId());
    const many = await reconcile(svc.sql, client(mailgun), WIDE_OPEN);
    assert.equal(many.rowsChecked, 40);
    assert.equal(many.requests, one.requests, "40 more rows, the same requests");
  }, {});
});

Deno.test("Logs API: without a next token on the last page, the scan stops there", async () => {
  await withSetup(async (svc, mailgun) => {
    const id = newMessageId();
    await insertRow(svc.sql, "documents", id);
    mailgun.add(microsecondEvent("temporary", id, 30), microsecondEvent("delivered", id, 20));
    const summary = await reconcile(svc.sql, client(mailgun), WIDE_OPEN);
    assert.deepEqual([summary.applied, summary.requests], [2, 1]);
  }, { omitLastNext: true });
});

Deno.test("Logs API: a webhook, then its Logs copy (to the millisecond), is recorded once", async () => {
  await withSetup(async (svc, mailgun) => {
    const id = newMessageId();
    const doc = await insertRow(svc.sql, "documents", id);
    const event = microsecondEvent("temporary", id);
    assert.equal((await post(svc.url, signedBody(svc.key, event).body)).status, 200);
    mailgun.add(event);
    const summary = await reconcile(svc.sql, client(mailgun), WIDE_OPEN);
    assert.deepEqual([summary.eventsFound, summary.applied, summary.duplicates], [1, 0, 1]);
    const state = await rowState(svc.sql, "documents", doc);
    assert.equal(state.events.length, 1);
    // The webhook's copy came first: its microseconds are what the trail holds.
    assert.ok(Math.abs(state.events[0].ts - (event.timestamp as number)) < 1e-6);
  });
});

Deno.test("Logs API: a Logs copy, then the webhook, is recorded once, and the webhook is answered as a duplicate", async () => {
  await withSetup(async (svc, mailgun) => {
    const id = newMessageId();
    const doc = await insertRow(svc.sql, "documents", id);
    const event = microsecondEvent("delivered", id);
    mailgun.add(event);
    const summary = await reconcile(svc.sql, client(mailgun), WIDE_OPEN);
    assert.deepEqual([summary.applied, summary.duplicates], [1, 0]);
    const late = await post(svc.url, signedBody(svc.key, event).body);
    assert.equal(late.status, 200);
    assert.equal(late.json.duplicate, true);
    const state = await rowState(svc.sql, "documents", doc);
    assert.equal(state.status, "DELIVERED");
    assert.equal(state.events.length, 1);
    assert.equal(state.events[0].ts, Math.floor((event.timestamp as number) * 1000) / 1000);
  });
});

Deno.test("Logs API: a webhook and its Logs copy at the same moment are recorded once", async () => {
  await withSetup(async (svc, mailgun) => {
    const pairs = await Promise.all(Array.from({ length: 12 }, async () => {
      const id = newMessageId();
      const doc = await insertRow(svc.sql, "documents", id);
      const event = microsecondEvent("delivered", id);
      mailgun.add(event);
      return { doc, event };
    }));
    const bodies = pairs.map(({ event }) => signedBody(svc.key, event));
    const [summary, ...answers] = await Promise.all([
      reconcile(svc.sql, client(mailgun), WIDE_OPEN),
      ...bodies.map(({ body }) => post(svc.url, body)),
    ]);
    assert.ok(answers.every((a) => a.status === 200), JSON.stringify(answers));
    const byWebhook = answers.filter((a) => a.json.duplicate !== true).length;
    assert.equal(summary.applied + byWebhook, pairs.length, "each event applied by exactly one of the two");
    // A row the webhook settled before reconcile listed unsettled rows is not looked for at all.
    assert.equal(summary.applied + summary.duplicates, summary.rowsChecked, "every row checked has its one event");
    for (const { doc } of pairs) {
      const state = await rowState(svc.sql, "documents", doc);
      assert.equal(state.events.length, 1);
      assert.equal(state.status, "DELIVERED");
    }
  });
});

Deno.test("Logs API: a refused key stops the run at once; a Mailgun that keeps failing fails the run and writes nothing", async () => {
  await withSetup(async (svc, mailgun) => {
    const id = newMessageId();
    const doc = await insertRow(svc.sql, "documents", id);
    mailgun.add(microsecondEvent("delivered", id));
    await assert.rejects(
      () => reconcile(svc.sql, client(mailgun, "key-wrong"), WIDE_OPEN),
      (error: unknown) => error instanceof MailgunApiError && error.status === 401 && error.fatal,
    );
    assert.equal(mailgun.requests.length, 1, "a 401 is not retried");

    for (let i = 0; i < 4; i++) mailgun.faults.push({ status: 502 });
    const lines: string[] = [];
    const summary = await reconcile(svc.sql, client(mailgun), WIDE_OPEN, (l) => lines.push(l));
    assert.deepEqual([summary.failed, summary.applied, summary.unknownToMailgun], [1, 0, 0]);
    assert.ok(lines.some((l) => /FAILED .*502 after every retry/.test(l)), lines.join("\n"));
    assert.equal((await rowState(svc.sql, "documents", doc)).events.length, 0);
  });
});

Deno.test("Logs API: a dry run reports what it would apply and writes nothing", async () => {
  await withSetup(async (svc, mailgun) => {
    const id = newMessageId();
    const doc = await insertRow(svc.sql, "documents", id);
    const recorded = microsecondEvent("temporary", id, 300);
    assert.equal((await post(svc.url, signedBody(svc.key, recorded).body)).status, 200);
    mailgun.add(recorded, microsecondEvent("delivered", id, 200));
    const [{ n: tokensBefore }] = await svc.sql`select count(*)::int as n from mailgun_webhook.tokens`;
    const lines: string[] = [];
    const dry = await reconcile(svc.sql, client(mailgun), { ...WIDE_OPEN, dryRun: true }, (l) => lines.push(l));
    assert.deepEqual([dry.eventsFound, dry.applied, dry.duplicates], [2, 1, 1]);
    assert.ok(lines.some((l) => l.includes("1 to apply, 1 already recorded")), lines.join("\n"));
    const state = await rowState(svc.sql, "documents", doc);
    assert.equal(state.status, "SENT");
    assert.equal(state.events.length, 1);
    const [{ n: tokensAfter }] = await svc.sql`select count(*)::int as n from mailgun_webhook.tokens`;
    assert.equal(tokensAfter, tokensBefore, "no token spent");

    const real = await reconcile(svc.sql, client(mailgun), WIDE_OPEN);
    assert.deepEqual([real.applied, real.duplicates], [dry.applied, dry.duplicates], "the dry run told the truth");
  });
});

Deno.test("Logs API: the window starts a little before the oldest send time among the rows looked for", async () => {
  await withSetup(async (svc, mailgun) => {
    const recent = datedMessageId(10 * 60_000);
    const due = datedMessageId(2 * 3_600_000);
    const older = datedMessageId(5 * 3_600_000);
    const old = datedMessageId(40 * 86_400_000);
    for (const id of [recent, due, older, old]) await insertRow(svc.sql, "documents", id);
    const summary = await reconcile(svc.sql, client(mailgun), {
      minAgeMs: 3_600_000,
      maxAgeMs: 30 * 86_400_000,
      limit: 100,
    });
    assert.deepEqual([summary.rowsChecked, summary.tooRecent, summary.tooOld], [2, 1, 1]);
    const start = Date.parse(String(mailgun.requests[0].body.start));
    assert.equal(start, messageSentAt(older)!.getTime() - 300_000);
  });
});

Deno.test("reconcile holds at most --limit rows, passing over those outside the age window", async () => {
  await withSetup(async (svc, mailgun) => {
    for (let i = 0; i < 5; i++) await insertRow(svc.sql, "documents", datedMessageId(40 * 86_400_000));
    for (let i = 0; i < 5; i++) await insertRow(svc.sql, "tenants", newMessageId());
    const settled = newMessageId();
    await insertRow(svc.sql, "documents", settled, "DELIVERED");
    const summary = await reconcile(svc.sql, client(mailgun), { ...WIDE_OPEN, limit: 3 });
    // The too-old rows, though first by id, do not take the places of rows still in Mailgun's retention.
    assert.deepEqual([summary.tooOld, summary.rowsChecked, summary.limited], [5, 3, true]);
    // Exactly as many rows as the limit: nothing was left out.
    const exact = await reconcile(svc.sql, client(mailgun), { ...WIDE_OPEN, limit: 5 });
    assert.deepEqual([exact.rowsChecked, exact.limited], [5, false]);
  });
});
