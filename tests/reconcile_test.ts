/**
 * Reconcile end to end: a real database (PostgreSQL when DATABASE_URL is
 * set, else the embedded one), the real webhook service where it matters,
 * and a local fake of Mailgun's Events API served by Deno.serve.
 */
import assert from "node:assert/strict";
import { createMailgunEventsClient, MailgunApiError } from "../src/reconcile/mailgun_events_client.ts";
import { messageSentAt } from "../src/reconcile/message_sent_at.ts";
import { reconcile, type ReconcileOptions } from "../src/reconcile/reconcile.ts";
import { type FakeMailgun, startFakeMailgun } from "./helpers/fake_mailgun.ts";
import { eventData, post, signedBody } from "./helpers/mailgun.ts";
import { run } from "./helpers/subprocess.ts";
import { insertRow, newMessageId, rowState, startTestService, type TestService } from "./helpers/test_service.ts";

const WIDE_OPEN: ReconcileOptions = { minAgeMs: 0, maxAgeMs: 30 * 86_400_000, limit: 1000 };

/** A service on its own database, and a fake Mailgun; both closed after `fn`. */
async function withSetup(fn: (svc: TestService, mailgun: FakeMailgun) => Promise<void>): Promise<void> {
  const svc = await startTestService();
  const mailgun = startFakeMailgun({ pageSize: 2 });
  try {
    await fn(svc, mailgun);
  } finally {
    await mailgun.close();
    await svc.close();
  }
}

function client(mailgun: FakeMailgun, apiKey = mailgun.apiKey, retries: string[] = []) {
  return createMailgunEventsClient({
    baseUrl: mailgun.url,
    apiKey,
    domain: mailgun.domain,
    // Short waits: the backoff itself is what is tested, not its length.
    backoff: {
      maxAttempts: 4,
      baseDelayMs: 5,
      maxDelayMs: 50,
      timeoutMs: 5_000,
      onRetry: (reason) => void retries.push(reason),
    },
  });
}

/** A Mailgun Message-ID sent `agoMs` ago: it starts with the UTC send time. */
function datedMessageId(agoMs: number): string {
  const stamp = new Date(Date.now() - agoMs).toISOString().replace(/[-:T]/g, "").slice(0, 14);
  return `<${stamp}.${crypto.randomUUID().slice(0, 16)}@mg.comprobify.test>`;
}

Deno.test("reconcile applies what Mailgun has across pages, through 429 and 5xx, and reports an unknown id", async () => {
  await withSetup(async (svc, mailgun) => {
    const a = newMessageId();
    const b = newMessageId();
    const unknown = newMessageId();
    const docA = await insertRow(svc.sql, "documents", a);
    const tenantB = await insertRow(svc.sql, "tenants", b);
    const docUnknown = await insertRow(svc.sql, "documents", unknown);
    // Five events of A span three pages of two (then the empty page); the opened one is not asked for.
    mailgun.add(
      eventData("temporary", a),
      eventData("temporary", a),
      eventData("opened", a),
      eventData("temporary", a),
      eventData("delivered", a),
      eventData("delayed-bounce", a),
      eventData("complained", b),
    );
    mailgun.faults.push({ status: 429, retryAfter: "1", messageId: a }, { status: 503, messageId: a });
    mailgun.faults.push({ status: 502, messageId: b });
    const retries: string[] = [];
    const lines: string[] = [];
    const summary = await reconcile(svc.sql, client(mailgun, undefined, retries), WIDE_OPEN, (l) => lines.push(l));

    assert.equal(summary.rowsChecked, 3);
    assert.equal(summary.messageIds, 3);
    assert.equal(summary.eventsFound, 6);
    assert.equal(summary.applied, 6);
    assert.equal(summary.duplicates, 0);
    assert.equal(summary.unknownToMailgun, 1);
    assert.equal(summary.failed, 0);
    assert.deepEqual(retries, ["429", "503", "502"]);

    const stateA = await rowState(svc.sql, "documents", docA);
    assert.equal(stateA.status, "FAILED");
    assert.deepEqual(stateA.events.map((e) => e.type).sort(), [
      "EMAIL_DELIVERED",
      "EMAIL_FAILED",
      "EMAIL_TEMP_FAILED",
      "EMAIL_TEMP_FAILED",
      "EMAIL_TEMP_FAILED",
    ]);
    assert.equal((await rowState(svc.sql, "tenants", tenantB)).status, "COMPLAINED");
    const stateUnknown = await rowState(svc.sql, "documents", docUnknown);
    assert.equal(stateUnknown.status, "SENT");
    assert.equal(stateUnknown.events.length, 0);

    // A's pages: 429, 503, then pages of 2, 2, 1 and the empty one; the cursor pages carry no query.
    const pagesOfA = mailgun.requests.filter((r) => r.messageId === a.slice(1, -1));
    assert.deepEqual(pagesOfA.map((r) => r.status), [429, 503, 200, 200, 200, 200]);
    const first = mailgun.requests.find((r) => r.params.has("message-id"))!;
    assert.equal(first.params.get("event"), "delivered OR failed OR complained");
    assert.equal(first.params.get("ascending"), "yes");
    assert.ok(lines.some((l) => l.includes(unknown.slice(1, -1)) && l.includes("no events")), lines.join("\n"));
  });
});

Deno.test("reconcile run twice, or after the webhook, never applies an event twice", async () => {
  await withSetup(async (svc, mailgun) => {
    const id = newMessageId();
    const doc = await insertRow(svc.sql, "documents", id);
    const byWebhook = eventData("temporary", id);
    const onlyInMailgun = eventData("temporary", id);
    mailgun.add(byWebhook, onlyInMailgun);
    assert.equal((await post(svc.url, (signedBody(svc.key, byWebhook)).body)).status, 200);

    const first = await reconcile(svc.sql, client(mailgun), WIDE_OPEN);
    assert.deepEqual([first.eventsFound, first.applied, first.duplicates], [2, 1, 1]);
    // Temporary failures leave the row SENT: the next run asks again and finds only what it has.
    const second = await reconcile(svc.sql, client(mailgun), WIDE_OPEN);
    assert.deepEqual([second.rowsChecked, second.eventsFound, second.applied, second.duplicates], [1, 2, 0, 2]);
    const state = await rowState(svc.sql, "documents", doc);
    assert.equal(state.status, "SENT");
    assert.deepEqual(state.events.map((e) => e.mailgun_event_id).sort(), [byWebhook.id, onlyInMailgun.id].sort());

    // The other way round: Mailgun's late retry of an event reconcile already applied is a duplicate.
    const late = await post(svc.url, (signedBody(svc.key, onlyInMailgun)).body);
    assert.equal(late.status, 200);
    assert.equal(late.json.duplicate, true);
    assert.equal((await rowState(svc.sql, "documents", doc)).events.length, 2);
  });
});

Deno.test("reconcile leaves recent rows to the webhook and skips rows past retention", async () => {
  await withSetup(async (svc, mailgun) => {
    const recent = datedMessageId(10 * 60_000);
    const due = datedMessageId(2 * 3_600_000);
    const old = datedMessageId(40 * 86_400_000);
    for (const id of [recent, due, old]) await insertRow(svc.sql, "documents", id);
    const settled = newMessageId();
    const settledId = await insertRow(svc.sql, "documents", settled);
    assert.equal((await post(svc.url, (signedBody(svc.key, eventData("delivered", settled))).body)).status, 200);
    assert.equal((await rowState(svc.sql, "documents", settledId)).status, "DELIVERED");

    const summary = await reconcile(svc.sql, client(mailgun), {
      minAgeMs: 3_600_000,
      maxAgeMs: 30 * 86_400_000,
      limit: 100,
    });
    assert.deepEqual([summary.rowsChecked, summary.tooRecent, summary.tooOld], [1, 1, 1]);
    const asked = mailgun.requests.map((r) => r.messageId);
    assert.deepEqual(asked, [due.slice(1, -1)]);
    // Mailgun is asked from a little before the send time the Message-ID carries.
    const begin = Number(mailgun.requests[0].params.get("begin"));
    assert.equal(begin, Math.floor(messageSentAt(due)!.getTime() / 1000) - 300);
  });
});

Deno.test("reconcile: a message id that keeps failing is reported and the others still run; a bad key stops all", async () => {
  await withSetup(async (svc, mailgun) => {
    const failing = newMessageId();
    const fine = newMessageId();
    await insertRow(svc.sql, "documents", failing);
    const fineDoc = await insertRow(svc.sql, "documents", fine);
    mailgun.add(eventData("delivered", fine));
    for (let i = 0; i < 4; i++) mailgun.faults.push({ status: 500, messageId: failing });
    const lines: string[] = [];
    const summary = await reconcile(svc.sql, client(mailgun), WIDE_OPEN, (line) => lines.push(line));
    assert.equal(summary.failed, 1);
    assert.equal(summary.applied, 1);
    assert.equal((await rowState(svc.sql, "documents", fineDoc)).status, "DELIVERED");
    assert.ok(lines.some((line) => line.includes("FAILED") && line.includes("500")), lines.join("\n"));

    await assert.rejects(
      () => reconcile(svc.sql, client(mailgun, "key-wrong"), WIDE_OPEN),
      (error: unknown) => error instanceof MailgunApiError && error.status === 401 && error.fatal,
    );
  });
});

Deno.test("reconcile never sends the API key to another host than the configured one", async () => {
  const svc = await startTestService();
  const mailgun = startFakeMailgun({ nextBase: "http://127.0.0.2:9" });
  try {
    const id = newMessageId();
    await insertRow(svc.sql, "documents", id);
    mailgun.add(eventData("temporary", id));
    await assert.rejects(
      () => reconcile(svc.sql, client(mailgun), WIDE_OPEN),
      (error: unknown) => error instanceof MailgunApiError && /another host/.test(error.message) && error.fatal,
    );
    assert.equal(mailgun.requests.length, 1);
  } finally {
    await mailgun.close();
    await svc.close();
  }
});

Deno.test("deno task reconcile prints a summary, exits 0, and exits 1 when Mailgun keeps failing", async () => {
  await withSetup(async (svc, mailgun) => {
    const id = newMessageId();
    const doc = await insertRow(svc.sql, "documents", id);
    mailgun.add(eventData("temporary", id), eventData("delivered", id));
    mailgun.faults.push({ status: 429, retryAfter: "1" });
    const env = {
      DATABASE_URL: svc.db.url,
      MAILGUN_API_KEY: mailgun.apiKey,
      MAILGUN_DOMAIN: mailgun.domain,
      MAILGUN_API_BASE_URL: mailgun.url,
      RECONCILE_BACKOFF_MS: "10",
      RECONCILE_MAX_BACKOFF_MS: "50",
      RECONCILE_MAX_ATTEMPTS: "3",
    };
    const ok = await run(["task", "reconcile", "--min-age", "0"], { env });
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    assert.match(ok.stdout, /Mailgun's Events API/);
    assert.match(ok.stdout, /Mailgun answered 429; retrying/);
    assert.match(ok.stdout, /Rows checked: 1 \(1 message ids\)/);
    assert.match(ok.stdout, /Events found: 2, applied: 2, duplicates skipped: 0/);
    assert.match(ok.stdout, /Unknown to Mailgun: 0, failed: 0, retries: 1/);
    assert.ok(!ok.stdout.includes(mailgun.apiKey) && !ok.stderr.includes(mailgun.apiKey));
    assert.equal((await rowState(svc.sql, "documents", doc)).status, "DELIVERED");

    const stuck = newMessageId();
    await insertRow(svc.sql, "documents", stuck);
    for (let i = 0; i < 3; i++) mailgun.faults.push({ status: 503, messageId: stuck });
    const failed = await run(["task", "reconcile", "--min-age", "0"], { env });
    assert.equal(failed.code, 1, failed.stdout);
    assert.match(failed.stdout, /FAILED, Mailgun answered 503 after every retry/);
    assert.match(failed.stdout, /failed: 1/);

    const unconfigured = await run(["task", "reconcile"], { env: { ...env, MAILGUN_API_KEY: "" } });
    assert.equal(unconfigured.code, 1);
    assert.match(unconfigured.stderr, /Configuration error: MAILGUN_API_KEY is required/);
  });
});
