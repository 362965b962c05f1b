import { parseArgs } from "node:util";
import { loadDatabaseSettings } from "../config/database_settings.ts";
import { ConfigError } from "../config/read_env.ts";
import { DatabaseUnavailableError } from "../db/database_errors.ts";
import { openToolDatabase } from "../db/open_tool_database.ts";
import { schemaStatus, shippedMigrations } from "../db/schema_status.ts";
import type { BackoffOptions } from "../reconcile/fetch_with_backoff.ts";
import { createMailgunEventsClient } from "../reconcile/mailgun_events_client.ts";
import { createMailgunLogsClient } from "../reconcile/mailgun_logs_client.ts";
import { reconcile, type ReconcileSummary } from "../reconcile/reconcile.ts";
import { loadReconcileConfig } from "../reconcile/reconcile_config.ts";
import { progressWriter } from "../reconcile/reconcile_progress.ts";

const USAGE = `Usage: deno task reconcile [--min-age 1h] [--max-age 30d] [--limit 10000] [--api logs|events] [--dry-run]
                          [--full] [--progress]

Reads Mailgun's delivered, failed and complained events that are new since the last run (from the
domain's watermark, less half an hour for events Mailgun stores late, to --min-age ago), page by page,
and applies those of the documents and tenants without a final status sent between --min-age and
--max-age ago exactly as the webhook would; then moves the watermark to where it read. The first run,
--full, and a new value of RECONCILE_RESCAN read the whole window (--max-age ago to --min-age ago)
instead. --api events uses Mailgun's deprecated Events API instead of its Logs API; --dry-run reports
what would be applied and writes nothing, the watermark included. On a terminal, a line on stderr
shows the progress (pages, events read, rows' events found, applied); --progress prints it there as one
line per page even when stderr is not a terminal.
Needs MAILGUN_API_KEY and MAILGUN_DOMAIN; MAILGUN_REGION is us (default) or eu. Gives up when the
database does not answer the connect within 10 s or a statement within 60 s.`;

/** `deno task reconcile`: repairs what Mailgun never delivered. Exits non-zero on any failure. */
async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        "min-age": { type: "string" },
        "max-age": { type: "string" },
        limit: { type: "string" },
        api: { type: "string" },
        "dry-run": { type: "boolean" },
        full: { type: "boolean" },
        progress: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(USAGE);
    return 0;
  }
  let config;
  try {
    config = loadReconcileConfig({
      minAge: parsed.values["min-age"],
      maxAge: parsed.values["max-age"],
      limit: parsed.values.limit,
      api: parsed.values.api,
    });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`Configuration error: ${error.message}`);
    return 1;
  }
  const dryRun = parsed.values["dry-run"] === true;
  const full = parsed.values.full === true;
  const progress = progressWriter(Deno.stderr, parsed.values.progress === true, dryRun);
  let retries = 0;
  const backoff: BackoffOptions = {
    ...config.backoff,
    onRetry(reason, delayMs) {
      retries++;
      progress.done();
      console.log(`  Mailgun answered ${reason}; retrying in ${(delayMs / 1000).toFixed(1)} s`);
    },
  };
  const client = { baseUrl: config.baseUrl, apiKey: config.apiKey, domain: config.domain, backoff };
  const mailgun = config.api === "events" ? createMailgunEventsClient(client) : createMailgunLogsClient(client);
  let db;
  try {
    db = await openToolDatabase(loadDatabaseSettings());
  } catch (error) {
    console.error(`Reconcile failed: could not open the database: ${(error as Error).message}`);
    return 1;
  }
  // The trail's day key (0005) is what makes a Logs API copy of a webhook's event one event.
  const schema = await schemaStatus(db.sql, await shippedMigrations(), 10_000);
  if (schema.state !== "current") {
    await db.close();
    console.error(
      schema.state === "behind"
        ? `Reconcile failed: the database lacks migrations ${schema.missing.join(", ")}: run deno task migrate first.`
        : `Reconcile failed: the database at ${db.host} did not answer: ${(schema.error as Error)?.message}`,
    );
    return 1;
  }
  console.log(
    `Reconciling ${db.description} with Mailgun's ${mailgun.name} (${config.baseUrl}, domain ${config.domain})` +
      (dryRun ? ": dry run, nothing is written" : ""),
  );
  console.log(
    `  rows without a final status, sent between ${ago(config.minAgeMs)} and ${ago(config.maxAgeMs)} ago`,
  );
  let summary: ReconcileSummary;
  try {
    summary = await reconcile(db.sql, mailgun, { ...config, dryRun, full, onPage: progress.onPage }, (line) => {
      progress.done();
      console.log(line);
    });
  } catch (error) {
    progress.done();
    const message = (error as Error).message;
    const where = error instanceof DatabaseUnavailableError && !message.includes(db.host)
      ? ` (the database at ${db.host})`
      : "";
    console.error(`Reconcile failed: ${message}${where}`);
    return 1;
  } finally {
    await db.close();
  }
  progress.done();
  printSummary(summary, retries, dryRun);
  return summary.failed > 0 ? 1 : 0;
}

function printSummary(summary: ReconcileSummary, retries: number, dryRun: boolean): void {
  const skipped = summary.tooRecent + summary.tooOld;
  console.log(
    `Rows checked: ${summary.rowsChecked} (${summary.messageIds} message ids)` +
      (skipped > 0 ? `, skipped: ${summary.tooRecent} too recent, ${summary.tooOld} too old` : ""),
  );
  if (summary.window !== undefined) {
    console.log(
      `Window: ${summary.window.begin.toISOString()} to ${summary.window.end.toISOString()}, ` +
        `${summary.eventsScanned} events read in ${summary.requests} requests` +
        (summary.fullScan === undefined ? " (new since the watermark)" : ` (the whole window: ${summary.fullScan})`),
    );
  }
  console.log(
    `Events found: ${summary.eventsFound}, ${dryRun ? "to apply" : "applied"}: ${summary.applied}, ` +
      `duplicates skipped: ${summary.duplicates}` +
      (summary.unmatched + summary.ignored + summary.unusable > 0
        ? `, unmatched: ${summary.unmatched}, ignored: ${summary.ignored}, unusable: ${summary.unusable}`
        : ""),
  );
  console.log(
    `Unknown to Mailgun: ${summary.unknownToMailgun}, failed: ${summary.failed}, retries: ${retries}` +
      (summary.limited ? " (the row limit was reached: run again for the rest)" : ""),
  );
  const was = summary.watermark === undefined ? "none yet" : `was ${summary.watermark.toISOString()}`;
  console.log(
    summary.advancedTo === undefined
      ? `Watermark: not moved (${summary.heldBack}; ${was})`
      : `Watermark: ${summary.advancedTo.toISOString()} (${was})`,
  );
}

function ago(ms: number): string {
  if (ms === 0) return "0 s";
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000} d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${ms / 1000} s`;
}

if (import.meta.main) {
  // Exits at once: a socket still connecting to a silent database must not keep the process alive.
  Deno.exit(await main(Deno.args));
}
