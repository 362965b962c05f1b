/**
 * Reconcile through the Events API (`--api events`), and `deno task
 * reconcile` itself: a real database (PostgreSQL when DATABASE_URL is set,
 * else the embedded one), the real webhook service where it matters, and
 * local fakes of Mailgun's Events and Logs APIs served by Deno.serve.
 */
import assert from "node:assert/strict";
import { createMailgunEventsClient } from "../../src/reconcile/mailgun_events_client.ts";
import { reconcile, type ReconcileOptions } from "../../src/reconcile/reconcile.ts";
import { MailgunApiError } from "../../src/reconcile/reconcile_errors.ts";
import { type FakeMailgun, startFakeMailgun } from "../helpers/fake_mailgun.ts";
import { startFakeMailgunLogs } from "../helpers/fake_mailgun_logs.ts";
import { eventData, post, signedBody } from "../helpers/mailgun.ts";
import { run } from "../helpers/subprocess.ts";
import { insertRow, newMessageId, rowState, startTestService, type TestService } from "../helpers/test_service.ts";

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

Deno.test("Events API: the window is read across pages, through 429 and 5xx, and matched locally", async () => {
  await withSetup(async (svc, mailgun) => {
    const a = newMessageId();
    const b = newMessageId();
    const unknown = newMessageId();
    const docA = await insertRow(svc.sql, "documents", a);
    const tenantB = await insertRow(svc.sql, "tenants", b);
    const docUnknown = await insertRow(svc.sql, "documents", unknown);
    // Six events asked for span three pages of two (then the empty page); the opened one is not asked for.
    mailgun.add(
      eventData("temporary", a),
      eventData("temporary", a),
      eventData("opened", a),
      eventData("delivered", newMessageId()),
      eventData("delivered", a),
      eventData("delayed-bounce", a),
      eventData("complained", b),
    );
    mailgun.faults.push({ status: 429, retryAfter: "1" }, { status: 503 }, { status: 502 });
    const retries: string[] = [];
    const lines: string[] = [];
    const summary = await reconcile(svc.sql, client(mailgun, undefined, retries), WIDE_OPEN, (l) => lines.push(l));

    assert.deepEqual([summary.rowsChecked, summary.messageIds, summary.eventsScanned], [3, 3, 6]);
    assert.deepEqual([summary.eventsFound, summary.applied, summary.duplicates], [5, 5, 0]);
    assert.deepEqual([summary.unknownToMailgun, summary.failed], [1, 0]);
    assert.deepEqual(retries, ["429", "503", "502"]);
    // 429, 503, 502, then pages of 2, 2, 2 and the empty one; the cursor pages carry no query.
    assert.deepEqual(mailgun.requests.map((r) => r.status), [429, 503, 502, 200, 200, 200, 200]);
    assert.equal(summary.requests, 7);
    const first = mailgun.requests.find((r) => r.params.has("event"))!;
    assert.equal(first.params.get("event"), "delivered OR failed OR complained");
    assert.equal(first.params.get("ascending"), "yes");
    assert.equal(first.params.get("message-id"), null, "one scan for all rows, not a request per message id");

    const stateA = await rowState(svc.sql, "documents", docA);
    assert.equal(stateA.status, "FAILED");
    assert.deepEqual(stateA.events.map((e) => e.type).sort(), [
      "EMAIL_DELIVERED",
      "EMAIL_FAILED",
      "EMAIL_TEMP_FAILED",
      "EMAIL_TEMP_FAILED",
    ]);
    assert.equal((await rowState(svc.sql, "tenants", tenantB)).status, "COMPLAINED");
    assert.equal((await rowState(svc.sql, "documents", docUnknown)).events.length, 0);
    assert.ok(lines.some((l) => l.includes(unknown.slice(1, -1)) && l.includes("no events")), lines.join("\n"));
  });
});

Deno.test("Events API: reconcile run twice, or after the webhook, never applies an event twice", async () => {
  await withSetup(async (svc, mailgun) => {
    const id = newMessageId();
    const doc = await insertRow(svc.sql, "documents", id);
    const byWebhook = eventData("temporary", id);
    const onlyInMailgun = eventData("temporary", id);
    mailgun.add(byWebhook, onlyInMailgun);
    assert.equal((await post(svc.url, signedBody(svc.key, byWebhook).body)).status, 200);

    const first = await reconcile(svc.sql, client(mailgun), WIDE_OPEN);
    assert.deepEqual([first.eventsFound, first.applied, first.duplicates], [2, 1, 1]);
    // Temporary failures leave the row SENT: the next run looks again and finds only what it has.
    const second = await reconcile(svc.sql, client(mailgun), WIDE_OPEN);
    assert.deepEqual([second.rowsChecked, second.eventsFound, second.applied, second.duplicates], [1, 2, 0, 2]);
    const state = await rowState(svc.sql, "documents", doc);
    assert.equal(state.status, "SENT");
    assert.deepEqual(state.events.map((e) => e.mailgun_event_id).sort(), [byWebhook.id, onlyInMailgun.id].sort());

    const late = await post(svc.url, signedBody(svc.key, onlyInMailgun).body);
    assert.equal(late.status, 200);
    assert.equal(late.json.duplicate, true);
    assert.equal((await rowState(svc.sql, "documents", doc)).events.length, 2);
  });
});

Deno.test("Events API: a scan that keeps failing fails the run; a bad key stops it at once", async () => {
  await withSetup(async (svc, mailgun) => {
    await insertRow(svc.sql, "documents", newMessageId());
    for (let i = 0; i < 4; i++) mailgun.faults.push({ status: 500 });
    const lines: string[] = [];
    const summary = await reconcile(svc.sql, client(mailgun), WIDE_OPEN, (line) => lines.push(line));
    assert.equal(summary.failed, 1);
    assert.ok(lines.some((line) => line.includes("FAILED") && line.includes("500")), lines.join("\n"));

    await assert.rejects(
      () => reconcile(svc.sql, client(mailgun, "key-wrong"), WIDE_OPEN),
      (error: unknown) => error instanceof MailgunApiError && error.status === 401 && error.fatal,
    );
  });
});

Deno.test("Events API: reconcile never sends the API key to another host than the configured one", async () => {
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

Deno.test("deno task reconcile uses the Logs API, --api events the Events API, --dry-run writes nothing", async () => {
  const svc = await startTestService();
  const logs = startFakeMailgunLogs();
  const events = startFakeMailgun();
  try {
    const id = newMessageId();
    const doc = await insertRow(svc.sql, "documents", id);
    const temporary = eventData("temporary", id);
    const delivered = eventData("delivered", id);
    logs.add(temporary, delivered);
    events.add(temporary, delivered);
    logs.faults.push({ status: 429, retryAfter: "1" });
    const env = (fake: { url: string; apiKey: string; domain: string }) => ({
      DATABASE_URL: svc.db.url,
      MAILGUN_API_KEY: fake.apiKey,
      MAILGUN_DOMAIN: fake.domain,
      MAILGUN_API_BASE_URL: fake.url,
      RECONCILE_BACKOFF_MS: "10",
      RECONCILE_MAX_BACKOFF_MS: "50",
      RECONCILE_MAX_ATTEMPTS: "3",
    });

    const dry = await run(["task", "reconcile", "--min-age", "0", "--dry-run", "--progress"], { env: env(logs) });
    assert.equal(dry.code, 0, dry.stderr + dry.stdout);
    // --progress: a line per page on stderr, though it is no terminal here.
    assert.match(
      dry.stderr,
      /^page 1: \d+ events read, 2 of them for the 1 rows checked, 2 to apply, 0 already recorded$/m,
    );
    assert.match(dry.stdout, /Mailgun's Logs API .*dry run, nothing is written/);
    assert.match(dry.stdout, /Events found: 2, to apply: 2, duplicates skipped: 0/);
    assert.equal((await rowState(svc.sql, "documents", doc)).events.length, 0);

    const ok = await run(["task", "reconcile", "--min-age", "0"], { env: env(logs) });
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    assert.match(ok.stdout, /Mailgun's Logs API/);
    assert.match(ok.stdout, /Rows checked: 1 \(1 message ids\)/);
    assert.match(ok.stdout, /events read in \d+ requests/);
    assert.match(ok.stdout, /Events found: 2, applied: 2, duplicates skipped: 0/);
    assert.ok(!ok.stdout.includes(logs.apiKey) && !ok.stderr.includes(logs.apiKey));
    // Not a terminal, no --progress: nothing beyond the summary.
    assert.doesNotMatch(ok.stderr + ok.stdout, /page 1:/);
    assert.equal((await rowState(svc.sql, "documents", doc)).status, "DELIVERED");

    const stuck = newMessageId();
    await insertRow(svc.sql, "documents", stuck);
    events.add(eventData("temporary", stuck));
    const viaEvents = await run(["task", "reconcile", "--min-age", "0", "--api", "events"], { env: env(events) });
    assert.equal(viaEvents.code, 0, viaEvents.stderr + viaEvents.stdout);
    assert.match(viaEvents.stdout, /Mailgun's Events API/);
    assert.match(viaEvents.stdout, /applied: 1, duplicates skipped: 0/);

    for (let i = 0; i < 3; i++) logs.faults.push({ status: 503 });
    const failed = await run(["task", "reconcile", "--min-age", "0"], { env: env(logs) });
    assert.equal(failed.code, 1, failed.stdout);
    assert.match(failed.stdout, /FAILED reading Mailgun's Logs API: Mailgun answered 503 after every retry/);
    assert.match(failed.stdout, /failed: 1/);

    const unconfigured = await run(["task", "reconcile"], { env: { ...env(logs), MAILGUN_API_KEY: "" } });
    assert.equal(unconfigured.code, 1);
    assert.match(unconfigured.stderr, /Configuration error: MAILGUN_API_KEY is required/);
    const badApi = await run(["task", "reconcile", "--api", "v4"], { env: env(logs) });
    assert.equal(badApi.code, 1);
    assert.match(badApi.stderr, /--api must be logs or events/);
  } finally {
    await events.close();
    await logs.close();
    await svc.close();
  }
});
