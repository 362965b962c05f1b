/**
 * Requests per reconcile run, against the local fake of Mailgun's Logs API
 * (tests/helpers/fake_mailgun_logs.ts, which counts them), on a scratch
 * database (DATABASE_URL's server, else the embedded database):
 *
 * - a row sent 20 days ago that never settles (it used to pin every run's
 *   window at 20 days), and HISTORY older events of the domain spread over
 *   those 20 days;
 * - E new events in the hour since the last run, and E/2 in the half hour
 *   before it (read again for events Mailgun stores late);
 * - the watermark an hour old, as after an hourly run.
 *
 * For each E it prints the requests of a run from the watermark and of a
 * full rescan (`--full`), which reads what every run read before the
 * watermark. Not a deno task: `deno run -A bench/reconcile_requests_bench.ts
 * [E ...]` (default 0 100 1000 10000).
 */
import { createMailgunLogsClient } from "../src/reconcile/mailgun_logs_client.ts";
import { reconcile, type ReconcileOptions } from "../src/reconcile/reconcile.ts";
import { setLogWriter } from "../src/reporting/log.ts";
import { startFakeMailgunLogs } from "../tests/helpers/fake_mailgun_logs.ts";
import { eventData } from "../tests/helpers/mailgun.ts";
import { insertRow, newMessageId, startTestService } from "../tests/helpers/test_service.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const HISTORY = 10_000;
const OPTIONS: ReconcileOptions = { minAgeMs: 0, maxAgeMs: 30 * DAY, limit: 1000 };

const counts = Deno.args.length > 0 ? Deno.args.map(Number) : [0, 100, 1_000, 10_000];
setLogWriter(() => {});
console.log("| New events | Events read | Requests (from the watermark) | Requests (--full: every run before) |");
console.log("| ---------- | ----------- | ----------------------------- | ----------------------------------- |");
for (const fresh of counts) {
  const svc = await startTestService();
  const mailgun = startFakeMailgunLogs();
  try {
    const sent = new Date(Date.now() - 20 * DAY).toISOString().replace(/[-:T]/g, "").slice(0, 14);
    await insertRow(svc.sql, "documents", `<${sent}.${crypto.randomUUID().slice(0, 16)}@mg.comprobify.test>`);
    const at = (agoMs: number) => eventData("delivered", newMessageId(), { timestamp: (Date.now() - agoMs) / 1000 });
    const span = 20 * DAY - 2 * HOUR;
    for (let i = 0; i < HISTORY; i++) mailgun.add(at(1.5 * HOUR + 60_000 + (i * span) / HISTORY));
    for (let i = 0; i < fresh / 2; i++) mailgun.add(at(HOUR + 60_000 + (i * 28 * 60_000) / (fresh / 2)));
    for (let i = 0; i < fresh; i++) mailgun.add(at(60_000 + (i * 58 * 60_000) / fresh));
    const client = () =>
      createMailgunLogsClient({
        baseUrl: mailgun.url,
        apiKey: mailgun.apiKey,
        domain: mailgun.domain,
        backoff: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20, timeoutMs: 30_000 },
      });
    await reconcile(svc.sql, client(), OPTIONS); // the first run: the whole window, and a watermark
    await svc.sql`update mailgun_webhook.reconcile_watermarks set scanned_until = ${new Date(Date.now() - HOUR)}`;
    const run = await reconcile(svc.sql, client(), OPTIONS);
    const full = await reconcile(svc.sql, client(), { ...OPTIONS, full: true });
    console.log(
      `| ${fresh} | ${run.eventsScanned} | ${run.requests} | ${full.requests} (${full.eventsScanned} events) |`,
    );
  } finally {
    await mailgun.close();
    await svc.close();
  }
}
