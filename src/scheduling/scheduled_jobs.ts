import type { Sql } from "postgres";
import { ConfigError, type EnvSource } from "../config/read_env.ts";
import { pruneTokens } from "../db/prune_tokens_query.ts";
import { pruneReach } from "../pruning/token_pruner.ts";
import { createMailgunEventsClient } from "../reconcile/mailgun_events_client.ts";
import { createMailgunLogsClient } from "../reconcile/mailgun_logs_client.ts";
import { reconcile } from "../reconcile/reconcile.ts";
import { loadScheduledReconcile, type ReconcileSchedule } from "../reconcile/reconcile_config.ts";
import { log } from "../reporting/log.ts";
import type { CronScheduler } from "./cron_scheduler.ts";

/** Empties the day partitions of consumed tokens that no signature window reaches: hourly is plenty for days. */
export const PRUNE_JOB = { name: "mailgun-webhook-prune-tokens", schedule: "7 * * * *" } as const;
/**
 * Reconciles with Mailgun's Logs API. Registered hourly whatever the setting:
 * Deno Deploy reads the jobs once, at deployment, from the entrypoint's top
 * level, so the schedule cannot depend on a variable; RECONCILE_SCHEDULE
 * (daily, the default, or hourly, or off) decides which runs do the work.
 */
export const RECONCILE_JOB = { name: "mailgun-webhook-reconcile", schedule: "37 * * * *" } as const;
/** The UTC hour whose run does the work when RECONCILE_SCHEDULE is daily. */
export const DAILY_RECONCILE_HOUR = 3;

/** What the jobs need from the running service. */
export interface JobContext {
  sql: Sql;
  /** The signature window: pruning leaves alone what it may reach. */
  window: { maxAgeSeconds: number; maxFutureSeconds: number };
  /** Bound on one database statement of reconcile. */
  queryTimeoutMs: number;
}

/**
 * Registers token pruning and the scheduled reconcile with `cron`, once each.
 * Call it at the entrypoint's top level, before the server starts: that is
 * where Deno Deploy finds the jobs. The handlers wait for `context` (the
 * started service); `env` is the environment (the process's by default).
 */
export function registerScheduledJobs(
  cron: CronScheduler,
  context: () => Promise<JobContext>,
  env?: EnvSource,
): void {
  cron(PRUNE_JOB.name, PRUNE_JOB.schedule, async () => {
    await runScheduledPrune(await context());
  });
  cron(RECONCILE_JOB.name, RECONCILE_JOB.schedule, async () => {
    await runScheduledReconcile(context, new Date(), env);
  });
}

/** One pruning run; logs what it emptied, and throws on failure (Deno Deploy then shows the run as an error). */
async function runScheduledPrune(context: JobContext): Promise<number> {
  const { olderThanSeconds, aheadSeconds } = pruneReach(context.window);
  const started = performance.now();
  try {
    const emptied = await pruneTokens(context.sql, olderThanSeconds, aheadSeconds);
    if (emptied > 0) {
      log("info", "pruned consumed tokens", {
        partitions: emptied,
        ms: Math.round(performance.now() - started),
        job: PRUNE_JOB.name,
      });
    }
    return emptied;
  } catch (error) {
    log("warn", "token pruning failed; the next run retries", {
      job: PRUNE_JOB.name,
      error_code: (error as { code?: string }).code,
      error: (error as Error).message,
    });
    throw error;
  }
}

/** Whether a run at `now` does the work under `schedule`. */
export function reconcileIsDue(schedule: ReconcileSchedule, now: Date): boolean {
  if (schedule === "off") return false;
  return schedule === "hourly" || now.getUTCHours() === DAILY_RECONCILE_HOUR;
}

/**
 * One scheduled reconcile: nothing when it is off or not due at `now`; else,
 * once `context` (the started service) is there, the same reconcile as
 * `deno task reconcile` (its RECONCILE_* settings: from the domain's
 * watermark, or the whole window once for a new RECONCILE_RESCAN), then one
 * summary line. Throws on a bad setting or a failed run (Deno
 * Deploy then shows the run as an error). Returns whether it ran.
 */
export async function runScheduledReconcile(
  context: () => Promise<JobContext>,
  now: Date,
  env?: EnvSource,
): Promise<boolean> {
  let scheduled;
  try {
    scheduled = loadScheduledReconcile(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      log("error", "scheduled reconcile is misconfigured", { job: RECONCILE_JOB.name, error: error.message });
    }
    throw error;
  }
  if (scheduled.schedule === "off" || !reconcileIsDue(scheduled.schedule, now)) return false;
  const { config } = scheduled;
  const { sql, queryTimeoutMs } = await context();
  let retries = 0;
  const client = {
    baseUrl: config.baseUrl,
    apiKey: config.apiKey,
    domain: config.domain,
    backoff: { ...config.backoff, onRetry: () => void retries++ },
  };
  const mailgun = config.api === "events" ? createMailgunEventsClient(client) : createMailgunLogsClient(client);
  const started = performance.now();
  let summary;
  try {
    summary = await reconcile(sql, mailgun, { ...config, queryTimeoutMs });
  } catch (error) {
    log("error", "scheduled reconcile failed", {
      job: RECONCILE_JOB.name,
      error_code: (error as { code?: string }).code,
      error: (error as Error).message,
    });
    throw error;
  }
  log(summary.failed > 0 ? "warn" : "info", "scheduled reconcile", {
    job: RECONCILE_JOB.name,
    api: mailgun.name,
    domain: config.domain,
    rows_checked: summary.rowsChecked,
    message_ids: summary.messageIds,
    events_scanned: summary.eventsScanned,
    requests: summary.requests,
    retries,
    events_found: summary.eventsFound,
    applied: summary.applied,
    duplicates: summary.duplicates,
    unmatched: summary.unmatched,
    unknown_to_mailgun: summary.unknownToMailgun,
    failed: summary.failed,
    limited: summary.limited,
    // Why the whole age window was read (first run, RECONCILE_RESCAN); absent: only what was new.
    full_scan: summary.fullScan,
    window_begin: summary.window?.begin.toISOString(),
    watermark: summary.advancedTo?.toISOString() ?? summary.watermark?.toISOString(),
    watermark_held_back: summary.heldBack,
    ms: Math.round(performance.now() - started),
  });
  if (summary.failed > 0) throw new Error(`Scheduled reconcile could not read Mailgun's ${mailgun.name}.`);
  return true;
}

/**
 * What runs on a schedule in this process, for the start-up line: pruning on
 * Deno.cron or on the service's timer, and the scheduled reconcile (only on
 * Deno.cron) with its setting, or why it is off.
 */
export function describeScheduledWork(cronAvailable: boolean, env?: EnvSource): {
  level: "info" | "error";
  fields: Record<string, unknown>;
} {
  const pruning = cronAvailable
    ? `Deno.cron ${PRUNE_JOB.name} (${PRUNE_JOB.schedule})`
    : "a timer in this process (no Deno.cron in this runtime)";
  if (!cronAvailable) {
    return { level: "info", fields: { token_pruning: pruning, reconcile: "by hand: deno task reconcile" } };
  }
  try {
    const scheduled = loadScheduledReconcile(env);
    const reconcileWork = scheduled.schedule === "off"
      ? `off (${scheduled.reason})`
      : `Deno.cron ${RECONCILE_JOB.name}, ${scheduled.schedule}` +
        (scheduled.schedule === "daily" ? ` at ${DAILY_RECONCILE_HOUR}:37 UTC` : "") +
        ` (${scheduled.config.api} API, domain ${scheduled.config.domain})`;
    return { level: "info", fields: { token_pruning: pruning, reconcile: reconcileWork } };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return { level: "error", fields: { token_pruning: pruning, reconcile: `misconfigured: ${error.message}` } };
  }
}
