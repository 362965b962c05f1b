/**
 * Scheduled work on Deno.cron: token pruning and the opt-in reconcile are
 * registered once each, with their names and schedules, through a scheduler
 * passed in (what Deno.cron is on Deno Deploy), and do their work on the real
 * database when run. Without Deno.cron the service keeps its own pruning
 * timer (tests/thorough/token_pruning_test.ts); with it, it sets none.
 */
import assert from "node:assert/strict";
import type { Sql } from "postgres";
import { connectPostgres } from "../../src/db/connect_postgres.ts";
import { migrate } from "../../src/db/migrate.ts";
import { PRUNE_MARGIN_SECONDS } from "../../src/pruning/token_pruner.ts";
import { setLogWriter } from "../../src/reporting/log.ts";
import { runtimeCron } from "../../src/scheduling/cron_scheduler.ts";
import {
  DAILY_RECONCILE_HOUR,
  describeScheduledWork,
  type JobContext,
  PRUNE_JOB,
  RECONCILE_JOB,
  reconcileIsDue,
  registerScheduledJobs,
} from "../../src/scheduling/scheduled_jobs.ts";
import { startFakeMailgunLogs } from "../helpers/fake_mailgun_logs.ts";
import { eventData } from "../helpers/mailgun.ts";
import { failWithStderr, signalChild, spawn, START_PERMISSIONS } from "../helpers/subprocess.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/test_database.ts";
import { insertRow, newMessageId, rowState, startTestService } from "../helpers/test_service.ts";

const WINDOW = { maxAgeSeconds: 300, maxFutureSeconds: 60 };
const DAY_SECONDS = 86_400;

/** A Deno.cron-like scheduler that keeps what is registered; like Deno.cron, it refuses a name twice. */
function fakeCron() {
  const jobs = new Map<string, { schedule: string; handler: () => Promise<void> }>();
  const registrations: string[] = [];
  return {
    jobs,
    registrations,
    cron(name: string, schedule: string, handler: () => Promise<void>) {
      registrations.push(name);
      if (jobs.has(name)) throw new TypeError("Cron with this name already exists");
      jobs.set(name, { schedule, handler });
    },
  };
}

/** A migrated database and a pool on it; no service (so no timer of its own prunes meanwhile). */
async function withDatabase(fn: (sql: Sql, db: TestDatabase) => Promise<void>): Promise<void> {
  const db = await createTestDatabase();
  const sql = connectPostgres(db.url, { max: 1, connectTimeoutMs: 5_000, prepare: false });
  try {
    await migrate(sql);
    await fn(sql, db);
  } finally {
    await sql.end({ timeout: 1 });
    await db.drop();
  }
}

async function captureLogs<T>(fn: (lines: Record<string, unknown>[]) => Promise<T>): Promise<T> {
  const lines: Record<string, unknown>[] = [];
  const previous = setLogWriter((line) => lines.push(JSON.parse(line)));
  try {
    return await fn(lines);
  } finally {
    setLogWriter(previous);
  }
}

Deno.test("this test process has no Deno.cron (no --unstable-cron): runtimeCron says so", () => {
  assert.equal(typeof (Deno as unknown as { cron?: unknown }).cron, "undefined");
  assert.equal(runtimeCron(), undefined);
});

Deno.test("registered once each, with Deno Deploy's valid names and 5-field UTC schedules", () => {
  const fake = fakeCron();
  registerScheduledJobs(fake.cron, () => new Promise<JobContext>(() => {}));
  assert.deepEqual(fake.registrations, [PRUNE_JOB.name, RECONCILE_JOB.name]);
  assert.deepEqual([...fake.jobs].map(([name, job]) => [name, job.schedule]), [
    ["mailgun-webhook-prune-tokens", "7 * * * *"],
    ["mailgun-webhook-reconcile", "37 * * * *"],
  ]);
  for (const name of fake.jobs.keys()) {
    // Deno.cron's own rule: at most 64 characters, letters, digits, whitespace, hyphens and underscores.
    assert.match(name, /^[A-Za-z0-9_ -]{1,64}$/);
  }
});

Deno.test("the pruning job empties the expired days of tokens on the real database, and keeps the live ones", async () => {
  await withDatabase(async (sql) => {
    const limit = WINDOW.maxAgeSeconds + WINDOW.maxFutureSeconds + PRUNE_MARGIN_SECONDS;
    await sql`
      insert into mailgun_webhook.tokens (token, body_hash, signed_at, slot)
      select 'expired-' || n, '\\x00'::bytea, t, mailgun_webhook.token_slot(t)
      from generate_series(1, 500) as n,
           lateral (select now() - make_interval(secs => ${limit + 2 * DAY_SECONDS}::int + n)) s(t)
    `;
    await sql`
      insert into mailgun_webhook.tokens (token, body_hash, signed_at, slot)
      select 'fresh', '\\x00'::bytea, now(), mailgun_webhook.token_slot(now())
    `;
    const fake = fakeCron();
    registerScheduledJobs(fake.cron, () => Promise.resolve({ sql, window: WINDOW, queryTimeoutMs: 5_000 }));
    const lines = await captureLogs(async (lines) => {
      await fake.jobs.get(PRUNE_JOB.name)!.handler();
      return lines;
    });
    const [left] = await sql`select count(*)::int as n from mailgun_webhook.tokens where token like 'expired-%'`;
    assert.equal(left.n, 0);
    const [fresh] = await sql`select count(*)::int as n from mailgun_webhook.tokens where token = 'fresh'`;
    assert.equal(fresh.n, 1);
    const line = lines.find((l) => l.msg === "pruned consumed tokens");
    assert.ok(line && Number(line.partitions) >= 1 && line.job === PRUNE_JOB.name, JSON.stringify(lines));
  });
});

Deno.test("the pruning job throws when the database refuses (Deploy shows the run as an error), with a WARN line", async () => {
  const db = await createTestDatabase();
  const sql = connectPostgres(db.url, { max: 1, connectTimeoutMs: 5_000, prepare: false });
  try {
    // Not migrated: the namespace and its pruning function do not exist.
    const fake = fakeCron();
    registerScheduledJobs(fake.cron, () => Promise.resolve({ sql, window: WINDOW, queryTimeoutMs: 5_000 }));
    const lines = await captureLogs(async (lines) => {
      await assert.rejects(fake.jobs.get(PRUNE_JOB.name)!.handler());
      return lines;
    });
    const line = lines.find((l) => l.msg === "token pruning failed; the next run retries");
    assert.equal(line?.level, "warn");
    assert.equal(line?.error_code, "3F000");
  } finally {
    await sql.end({ timeout: 1 });
    await db.drop();
  }
});

Deno.test("the reconcile job, opted in by its variables, applies Mailgun's missing event through the Logs API", async () => {
  await withDatabase(async (sql) => {
    const mailgun = startFakeMailgunLogs({ pageSize: 2 });
    try {
      const messageId = newMessageId();
      const id = await insertRow(sql, "documents", messageId);
      mailgun.add(eventData("delivered", messageId, { timestamp: Date.now() / 1000 - 60 }));
      const vars: Record<string, string> = {
        MAILGUN_API_KEY: mailgun.apiKey,
        MAILGUN_DOMAIN: mailgun.domain,
        MAILGUN_API_BASE_URL: mailgun.url,
        RECONCILE_SCHEDULE: "hourly",
        RECONCILE_MIN_AGE: "0",
        RECONCILE_BACKOFF_MS: "5",
      };
      const fake = fakeCron();
      registerScheduledJobs(
        fake.cron,
        () => Promise.resolve({ sql, window: WINDOW, queryTimeoutMs: 5_000 }),
        (name) => vars[name],
      );
      const lines = await captureLogs(async (lines) => {
        await fake.jobs.get(RECONCILE_JOB.name)!.handler();
        return lines;
      });
      assert.equal((await rowState(sql, "documents", id)).status, "DELIVERED");
      const summary = lines.find((l) => l.msg === "scheduled reconcile");
      assert.ok(summary, JSON.stringify(lines));
      assert.equal(summary.level, "info");
      assert.equal(summary.api, "Logs API");
      assert.deepEqual([summary.rows_checked, summary.applied, summary.failed], [1, 1, 0]);
      assert.ok(!JSON.stringify(lines).includes(mailgun.apiKey), "the API key is never logged");

      // Off: the variable, or no credentials at all; nothing asks Mailgun.
      const asked = mailgun.requests.length;
      for (const off of [{ ...vars, RECONCILE_SCHEDULE: "off" }, { RECONCILE_SCHEDULE: "hourly" }]) {
        const again = fakeCron();
        registerScheduledJobs(
          again.cron,
          () => Promise.resolve({ sql, window: WINDOW, queryTimeoutMs: 5_000 }),
          (name) => (off as Record<string, string>)[name],
        );
        await again.jobs.get(RECONCILE_JOB.name)!.handler();
      }
      assert.equal(mailgun.requests.length, asked);
    } finally {
      await mailgun.close();
    }
  });
});

Deno.test("the reconcile job: a bad setting fails the run with an ERROR line naming the variable", async () => {
  const fake = fakeCron();
  const vars: Record<string, string> = { MAILGUN_API_KEY: "key-x", MAILGUN_DOMAIN: "not a domain" };
  registerScheduledJobs(fake.cron, () => new Promise<JobContext>(() => {}), (name) => vars[name]);
  // The context is never needed: the settings are read first.
  const lines = await captureLogs(async (lines) => {
    await assert.rejects(fake.jobs.get(RECONCILE_JOB.name)!.handler(), /MAILGUN_DOMAIN/);
    return lines;
  });
  assert.equal(lines.find((l) => l.msg === "scheduled reconcile is misconfigured")?.level, "error");
});

Deno.test("daily (the default) does the work in one hourly run a day; hourly in each; off in none", () => {
  const at = (hour: number) => new Date(Date.UTC(2026, 0, 1, hour, 37));
  assert.equal(reconcileIsDue("daily", at(DAILY_RECONCILE_HOUR)), true);
  assert.equal(reconcileIsDue("daily", at(DAILY_RECONCILE_HOUR + 1)), false);
  assert.equal(reconcileIsDue("hourly", at(11)), true);
  assert.equal(reconcileIsDue("off", at(DAILY_RECONCILE_HOUR)), false);
});

Deno.test("the start-up line says what runs where: timer and reconcile by hand, or Deno.cron with the setting", () => {
  assert.deepEqual(describeScheduledWork(false, () => undefined).fields, {
    token_pruning: "a timer in this process (no Deno.cron in this runtime)",
    reconcile: "by hand: deno task reconcile",
  });
  const off = describeScheduledWork(true, () => undefined);
  assert.equal(off.level, "info");
  assert.match(String(off.fields.token_pruning), /^Deno\.cron mailgun-webhook-prune-tokens/);
  assert.equal(off.fields.reconcile, "off (MAILGUN_API_KEY and MAILGUN_DOMAIN are not set)");
  const vars: Record<string, string> = { MAILGUN_API_KEY: "key-x", MAILGUN_DOMAIN: "mg.example.com" };
  assert.match(
    String(describeScheduledWork(true, (name) => vars[name]).fields.reconcile),
    /^Deno\.cron mailgun-webhook-reconcile, daily at 3:37 UTC \(logs API, domain mg\.example\.com\)$/,
  );
  const bad = describeScheduledWork(true, (name) => ({ ...vars, RECONCILE_SCHEDULE: "weekly" })[name]);
  assert.equal(bad.level, "error");
  assert.match(String(bad.fields.reconcile), /RECONCILE_SCHEDULE must be one of daily, hourly, off/);
});

Deno.test("pruneOnTimer false (Deno.cron prunes): the service sets no pruning timer of its own", async () => {
  const intervals: number[] = [];
  const realSetInterval = globalThis.setInterval;
  globalThis.setInterval = ((callback: () => unknown, ms?: number) => {
    intervals.push(ms ?? 0);
    return realSetInterval(callback, ms);
  }) as typeof setInterval;
  let svc;
  try {
    svc = await startTestService({}, undefined, { pruneOnTimer: false });
  } finally {
    globalThis.setInterval = realSetInterval;
  }
  try {
    assert.deepEqual(intervals.filter((ms) => ms >= 60_000), [], "no long-period timer");
  } finally {
    await svc.close();
  }
});

Deno.test("deno run --unstable-cron main.ts: the real Deno.cron takes both jobs at start; the start-up line says so", async () => {
  const db = await createTestDatabase();
  const setup = connectPostgres(db.url, { max: 1, connectTimeoutMs: 5_000, prepare: false });
  await migrate(setup);
  await setup.end();
  const child = spawn(["run", "--unstable-cron", ...START_PERMISSIONS, "main.ts"], {
    env: {
      DATABASE_URL: db.url,
      MAILGUN_WEBHOOK_SIGNING_KEY: `cron-key-${crypto.randomUUID()}`,
      PORT: "0",
      LISTEN_HOST: "127.0.0.1",
      DB_POOL_MAX: String(db.poolMax),
    },
  });
  try {
    const line = JSON.parse(await child.waitFor((l) => l.includes('"msg":"scheduled work"')));
    assert.equal(line.token_pruning, `Deno.cron ${PRUNE_JOB.name} (${PRUNE_JOB.schedule})`);
    assert.equal(line.reconcile, "off (MAILGUN_API_KEY and MAILGUN_DOMAIN are not set)");
  } catch (error) {
    await failWithStderr(child, error);
  } finally {
    signalChild(child, "SIGTERM");
    await child.process.status;
    await db.drop();
  }
});
