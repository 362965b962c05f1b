/**
 * Reconcile's watermark (migration 0013): each run reads what is new since
 * the last complete one, less Mailgun's half hour for late events, so its
 * requests follow the new events and not the oldest row without a final
 * status. Against the real database (PostgreSQL when DATABASE_URL is set,
 * else the embedded one) and a local fake of the Logs API that counts
 * requests (tests/helpers/fake_mailgun_logs.ts).
 */
import assert from "node:assert/strict";
import type { Sql } from "postgres";
import { readReconcileWatermark } from "../../src/db/reconcile_watermark_query.ts";
import { createMailgunLogsClient, LOGS_PAGE_LIMIT } from "../../src/reconcile/mailgun_logs_client.ts";
import { messageSentAt } from "../../src/reconcile/message_sent_at.ts";
import { LATE_EVENTS_MARGIN_MS, reconcile, type ReconcileOptions } from "../../src/reconcile/reconcile.ts";
import { MailgunApiError } from "../../src/reconcile/reconcile_errors.ts";
import { RECONCILE_JOB, runScheduledReconcile } from "../../src/scheduling/scheduled_jobs.ts";
import { setLogWriter } from "../../src/reporting/log.ts";
import { type FakeMailgunLogs, startFakeMailgunLogs } from "../helpers/fake_mailgun_logs.ts";
import { eventData } from "../helpers/mailgun.ts";
import { run } from "../helpers/subprocess.ts";
import { insertRow, newMessageId, rowState, startTestService, type TestService } from "../helpers/test_service.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const OPTIONS: ReconcileOptions = { minAgeMs: 0, maxAgeMs: 30 * DAY, limit: 1000 };

async function withSetup(fn: (svc: TestService, mailgun: FakeMailgunLogs) => Promise<void>): Promise<void> {
  const svc = await startTestService();
  const mailgun = startFakeMailgunLogs();
  try {
    await fn(svc, mailgun);
  } finally {
    await mailgun.close();
    await svc.close();
  }
}

function client(mailgun: FakeMailgunLogs, apiKey = mailgun.apiKey) {
  return createMailgunLogsClient({
    baseUrl: mailgun.url,
    apiKey,
    domain: mailgun.domain,
    backoff: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20, timeoutMs: 5_000 },
  });
}

/** A Mailgun Message-ID sent `agoMs` ago: it starts with the UTC send time. */
function datedMessageId(agoMs: number): string {
  const stamp = new Date(Date.now() - agoMs).toISOString().replace(/[-:T]/g, "").slice(0, 14);
  return `<${stamp}.${crypto.randomUUID().slice(0, 16)}@mg.comprobify.test>`;
}

/** A delivered event of another message of the domain, stamped `agoMs` ago. */
function otherEvent(agoMs: number): Record<string, unknown> {
  return eventData("delivered", newMessageId(), { timestamp: (Date.now() - agoMs) / 1000 });
}

function watermark(sql: Sql, mailgun: FakeMailgunLogs) {
  return readReconcileWatermark(sql, mailgun.domain, "logs");
}

/** As if the last complete run had ended `agoMs` ago. */
async function setWatermark(sql: Sql, mailgun: FakeMailgunLogs, agoMs: number): Promise<Date> {
  const at = new Date(Date.now() - agoMs);
  await sql`
    update mailgun_webhook.reconcile_watermarks set scanned_until = ${at}
    where domain = ${mailgun.domain} and api = 'logs'
  `;
  return at;
}

/** Requests of a scan of `events` events, oldest first, when every page carries a next token. */
function pagesFor(events: number): number {
  return Math.ceil(events / LOGS_PAGE_LIMIT) + 1;
}

Deno.test("watermark: a row that never settles does not widen later runs; requests = ceil(events since the watermark, less 30 min, / 100) + 1", async () => {
  await withSetup(async (svc, mailgun) => {
    // Sent 20 days ago, never settled, never will: it used to pin every run's window at 20 days.
    const stuck = datedMessageId(20 * DAY);
    await insertRow(svc.sql, "documents", stuck);
    for (let i = 0; i < 450; i++) mailgun.add(otherEvent(19 * DAY - i * 60_000));

    const first = await reconcile(svc.sql, client(mailgun), OPTIONS);
    assert.equal(first.fullScan, "first run (no watermark yet)");
    assert.equal(first.window!.begin.getTime(), messageSentAt(stuck)!.getTime() - 5 * 60_000);
    assert.deepEqual([first.eventsScanned, first.requests], [450, pagesFor(450)]);
    assert.equal(first.advancedTo?.getTime(), first.window!.end.getTime());
    assert.deepEqual((await watermark(svc.sql, mailgun))?.scannedUntil, first.advancedTo);

    // Several counts of new events, each after a watermark an hour old (as after an hourly run), with some
    // events of the half hour before it (read again, for late ones) and the stuck row still there.
    for (const fresh of [0, 1, 99, 100, 101, 250]) {
      mailgun.clear();
      await setWatermark(svc.sql, mailgun, HOUR);
      const again = 7;
      for (let i = 0; i < again; i++) mailgun.add(otherEvent(HOUR + 5 * 60_000 + i * 1000));
      // Before the half hour: read by the earlier run, never again.
      for (let i = 0; i < 30; i++) mailgun.add(otherEvent(HOUR + 31 * 60_000 + i * 1000));
      for (let i = 0; i < fresh; i++) mailgun.add(otherEvent(HOUR - 60_000 - i * 10));
      const before = mailgun.requests.length;
      const next = await reconcile(svc.sql, client(mailgun), OPTIONS);
      assert.equal(next.fullScan, undefined);
      assert.equal(next.rowsChecked, 1, "the stuck row is still looked for");
      assert.equal(next.eventsScanned, fresh + again, `${fresh} new events`);
      assert.equal(next.requests, pagesFor(fresh + again), `${fresh} new events`);
      assert.equal(mailgun.requests.length - before, next.requests, "the fake counted the same");
      assert.equal(next.window!.begin.getTime(), next.watermark!.getTime() - LATE_EVENTS_MARGIN_MS);
      assert.equal(next.advancedTo?.getTime(), next.window!.end.getTime());
    }
  });
});

Deno.test("watermark: an event Mailgun stores late, stamped within the half hour before the watermark, is still applied", async () => {
  await withSetup(async (svc, mailgun) => {
    const id = newMessageId();
    const doc = await insertRow(svc.sql, "documents", id);
    await reconcile(svc.sql, client(mailgun), OPTIONS);
    const mark = await setWatermark(svc.sql, mailgun, 10 * 60_000);
    // Both became retrievable only after the last run; the first is within the margin, the second is not.
    const late = eventData("temporary", id, { timestamp: (mark.getTime() - 25 * 60_000) / 1000 });
    const tooLate = eventData("delivered", id, { timestamp: (mark.getTime() - 35 * 60_000) / 1000 });
    mailgun.add(late, tooLate);
    const next = await reconcile(svc.sql, client(mailgun), OPTIONS);
    assert.deepEqual([next.eventsScanned, next.applied], [1, 1]);
    assert.deepEqual((await rowState(svc.sql, "documents", doc)).events.map((e) => e.mailgun_event_id), [late.id]);

    // Later than Mailgun's half hour: only a full rescan finds it (and the other again, as a duplicate).
    const full = await reconcile(svc.sql, client(mailgun), { ...OPTIONS, full: true });
    assert.equal(full.fullScan, "asked for (--full)");
    assert.deepEqual([full.eventsScanned, full.applied, full.duplicates], [2, 1, 1]);
    assert.equal((await rowState(svc.sql, "documents", doc)).status, "DELIVERED");
    assert.ok(full.advancedTo! >= mark);
  });
});

Deno.test("watermark: a failed run, a refused key, a dry run and a run cut short by its limit leave it where it was", async () => {
  await withSetup(async (svc, mailgun) => {
    const id = newMessageId();
    const doc = await insertRow(svc.sql, "documents", id);
    mailgun.add(eventData("delivered", id, { timestamp: (Date.now() - 40 * 60_000) / 1000 }));

    // No watermark yet: a dry run reads the whole window and writes none.
    const dryFirst = await reconcile(svc.sql, client(mailgun), { ...OPTIONS, dryRun: true });
    assert.deepEqual([dryFirst.fullScan, dryFirst.applied, dryFirst.heldBack], [
      "first run (no watermark yet)",
      1,
      "dry run",
    ]);
    assert.equal(await watermark(svc.sql, mailgun), undefined);

    // Mailgun keeps failing: the event is not applied, and no watermark is written past it.
    for (let i = 0; i < 3; i++) mailgun.faults.push({ status: 502 });
    const failed = await reconcile(svc.sql, client(mailgun), OPTIONS);
    assert.deepEqual([failed.failed, failed.applied, failed.advancedTo], [1, 0, undefined]);
    assert.equal(failed.heldBack, "Mailgun's Logs API could not be read");
    assert.equal(await watermark(svc.sql, mailgun), undefined);
    await assert.rejects(
      () => reconcile(svc.sql, client(mailgun, "key-wrong"), OPTIONS),
      (error: unknown) => error instanceof MailgunApiError && error.fatal,
    );
    assert.equal(await watermark(svc.sql, mailgun), undefined);

    // The limit leaves rows unread: the next run must read the same events for them.
    await insertRow(svc.sql, "tenants", newMessageId());
    const limited = await reconcile(svc.sql, client(mailgun), { ...OPTIONS, limit: 1 });
    assert.deepEqual([limited.limited, limited.applied, limited.advancedTo], [true, 1, undefined]);
    assert.equal(limited.heldBack, "the row limit was reached");
    assert.equal(await watermark(svc.sql, mailgun), undefined);
    assert.equal((await rowState(svc.sql, "documents", doc)).status, "DELIVERED");

    const ok = await reconcile(svc.sql, client(mailgun), OPTIONS);
    assert.equal(ok.fullScan, "first run (no watermark yet)", "still the first complete run");
    const mark = (await watermark(svc.sql, mailgun))!.scannedUntil;
    assert.deepEqual(mark, ok.advancedTo);

    // With a watermark: a dry run (even a full one) and a failed run leave it.
    await reconcile(svc.sql, client(mailgun), { ...OPTIONS, dryRun: true });
    await reconcile(svc.sql, client(mailgun), { ...OPTIONS, dryRun: true, full: true });
    for (let i = 0; i < 3; i++) mailgun.faults.push({ status: 503 });
    assert.equal((await reconcile(svc.sql, client(mailgun), OPTIONS)).failed, 1);
    assert.deepEqual((await watermark(svc.sql, mailgun))!.scannedUntil, mark);
  });
});

Deno.test("watermark: a run reads up to now less the minimum age; what is younger waits for the next run", async () => {
  await withSetup(async (svc, mailgun) => {
    // Due (sent 3 h ago), its delayed bounce 20 min ago; and a row sent 50 min ago, delivered 45 min ago.
    const due = datedMessageId(3 * HOUR);
    const young = datedMessageId(50 * 60_000);
    const dueRow = await insertRow(svc.sql, "documents", due);
    const youngRow = await insertRow(svc.sql, "documents", young);
    mailgun.add(
      eventData("delayed-bounce", due, { timestamp: (Date.now() - 20 * 60_000) / 1000 }),
      eventData("delivered", young, { timestamp: (Date.now() - 45 * 60_000) / 1000 }),
    );
    const hourly = { ...OPTIONS, minAgeMs: HOUR };
    const first = await reconcile(svc.sql, client(mailgun), hourly);
    assert.deepEqual([first.rowsChecked, first.tooRecent, first.eventsScanned], [1, 1, 0]);
    assert.ok(Math.abs(first.window!.end.getTime() - (Date.now() - HOUR)) < 5_000);
    assert.deepEqual((await watermark(svc.sql, mailgun))?.scannedUntil, first.window!.end);

    // Later both rows are due (minimum age 0 here): the next window starts half an hour before the last one ended.
    const later = await reconcile(svc.sql, client(mailgun), { ...OPTIONS, minAgeMs: 0 });
    assert.deepEqual([later.rowsChecked, later.eventsScanned, later.applied], [2, 2, 2]);
    assert.equal((await rowState(svc.sql, "documents", dueRow)).status, "FAILED");
    assert.equal((await rowState(svc.sql, "documents", youngRow)).status, "DELIVERED");
  });
});

Deno.test("watermark: RECONCILE_RESCAN asks the scheduled job for one full rescan per new value", async () => {
  await withSetup(async (svc, mailgun) => {
    const stuck = datedMessageId(10 * DAY);
    await insertRow(svc.sql, "documents", stuck);
    for (let i = 0; i < 120; i++) mailgun.add(otherEvent(9 * DAY - i * 60_000));
    const vars: Record<string, string> = {
      MAILGUN_API_KEY: mailgun.apiKey,
      MAILGUN_DOMAIN: mailgun.domain,
      MAILGUN_API_BASE_URL: mailgun.url,
      RECONCILE_SCHEDULE: "hourly",
      RECONCILE_MIN_AGE: "0",
      RECONCILE_BACKOFF_MS: "5",
    };
    const context = () =>
      Promise.resolve({ sql: svc.sql, window: { maxAgeSeconds: 300, maxFutureSeconds: 60 }, queryTimeoutMs: 5_000 });
    async function scheduledRun(rescan?: string): Promise<Record<string, unknown>> {
      const lines: Record<string, unknown>[] = [];
      const previous = setLogWriter((line) => void lines.push(JSON.parse(line)));
      try {
        const env = { ...vars, ...(rescan === undefined ? {} : { RECONCILE_RESCAN: rescan }) };
        assert.equal(
          await runScheduledReconcile(context, new Date(), (name) => (env as Record<string, string>)[name]),
          true,
        );
      } finally {
        setLogWriter(previous);
      }
      const line = lines.find((l) => l.msg === "scheduled reconcile" && l.job === RECONCILE_JOB.name);
      assert.ok(line, JSON.stringify(lines));
      return line;
    }
    const first = await scheduledRun("2026-12-01");
    assert.deepEqual([first.full_scan, first.events_scanned, first.requests], ["first run (no watermark yet)", 120, 3]);
    assert.equal((await watermark(svc.sql, mailgun))?.rescanLabel, "2026-12-01", "the first run did that rescan");
    const steady = await scheduledRun("2026-12-01");
    assert.deepEqual([steady.full_scan, steady.events_scanned, steady.requests], [undefined, 0, 1]);
    const unset = await scheduledRun();
    assert.deepEqual([unset.full_scan, unset.requests], [undefined, 1]);
    const asked = await scheduledRun("2026-12-07");
    assert.deepEqual([asked.full_scan, asked.events_scanned, asked.requests], [
      'RECONCILE_RESCAN is "2026-12-07"',
      120,
      3,
    ]);
    assert.equal(typeof asked.watermark, "string");
    const done = await scheduledRun("2026-12-07");
    assert.deepEqual([done.full_scan, done.requests], [undefined, 1]);
  });
});

Deno.test("deno task reconcile: the watermark line, --full, and a dry run that leaves the watermark", async () => {
  await withSetup(async (svc, mailgun) => {
    const stuck = datedMessageId(5 * DAY);
    await insertRow(svc.sql, "documents", stuck);
    for (let i = 0; i < 150; i++) mailgun.add(otherEvent(4 * DAY - i * 60_000));
    const env = {
      DATABASE_URL: svc.db.url,
      MAILGUN_API_KEY: mailgun.apiKey,
      MAILGUN_DOMAIN: mailgun.domain,
      MAILGUN_API_BASE_URL: mailgun.url,
    };
    const first = await run(["task", "reconcile", "--min-age", "0"], { env });
    assert.equal(first.code, 0, first.stderr + first.stdout);
    assert.match(first.stdout, /150 events read in 3 requests \(the whole window: first run \(no watermark yet\)\)/);
    assert.match(first.stdout, /^Watermark: \S+Z \(none yet\)$/m);

    const next = await run(["task", "reconcile", "--min-age", "0"], { env });
    assert.equal(next.code, 0, next.stderr + next.stdout);
    assert.match(next.stdout, /0 events read in 1 requests \(new since the watermark\)/);
    assert.match(next.stdout, /^Watermark: \S+Z \(was \S+Z\)$/m);
    const mark = (await watermark(svc.sql, mailgun))!.scannedUntil;

    const dry = await run(["task", "reconcile", "--min-age", "0", "--full", "--dry-run"], { env });
    assert.equal(dry.code, 0, dry.stderr + dry.stdout);
    assert.match(dry.stdout, /150 events read in 3 requests \(the whole window: asked for \(--full\)\)/);
    assert.match(dry.stdout, /^Watermark: not moved \(dry run; was \S+Z\)$/m);
    assert.deepEqual((await watermark(svc.sql, mailgun))!.scannedUntil, mark);

    const full = await run(["task", "reconcile", "--min-age", "0", "--full"], { env });
    assert.equal(full.code, 0, full.stderr + full.stdout);
    assert.match(full.stdout, /150 events read in 3 requests \(the whole window: asked for \(--full\)\)/);
    assert.ok((await watermark(svc.sql, mailgun))!.scannedUntil > mark);
  });
});
