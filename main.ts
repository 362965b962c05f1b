import { ConfigError } from "./src/config/read_env.ts";
import { type Config, loadConfig } from "./src/config/service_config.ts";
import { HostSchemaProblemsError } from "./src/db/host_schema_monitor.ts";
import { SHUTDOWN_DEADLINE_MS } from "./src/http/drain_requests.ts";
import { log } from "./src/reporting/log.ts";
import { runtimeCron } from "./src/scheduling/cron_scheduler.ts";
import { describeScheduledWork, type JobContext, registerScheduledJobs } from "./src/scheduling/scheduled_jobs.ts";
import { startService } from "./src/start_service.ts";

const USAGE = `Usage: deno task start

Serves the Mailgun webhook (POST /v1/mailgun/webhook, GET /healthz) until SIGINT or SIGTERM.
Configured by environment variables only (docs/configuration.md): DATABASE_URL (unset: the embedded
development database in .pglite/, migrated on the spot), MAILGUN_WEBHOOK_SIGNING_KEY, PORT (default 8000).
Logs one JSON line per event: info on stdout, warn and error on stderr.`;

// Deno Deploy finds Deno.cron jobs by evaluating the entrypoint's top level before the server starts, and runs
// each once per schedule for the timeline: they are registered here and wait for the service. Without Deno.cron
// (deno task start), the service prunes on its own timer and reconcile is run by hand.
const cron = runtimeCron();
const jobContext = Promise.withResolvers<JobContext>();
if (import.meta.main && cron !== undefined) registerScheduledJobs(cron, () => jobContext.promise);

/** Serves the Mailgun webhook until SIGINT (Deno Deploy's stop signal) or SIGTERM. */
async function main(args: string[]): Promise<void> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    Deno.exit(0);
  }
  if (args.length > 0) {
    console.error(`Unknown argument ${args[0]}: the service takes no arguments.\n\n${USAGE}`);
    Deno.exit(2);
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`Configuration error: ${error.message}`);
      Deno.exit(1);
    }
    throw error;
  }
  let service;
  try {
    service = await startService(config, { pruneOnTimer: cron === undefined });
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      console.error(
        `Start-up failed: port ${config.port} is already in use (another service listens there): stop it, ` +
          `or set PORT to a free port.`,
      );
      Deno.exit(1);
    }
    if (error instanceof HostSchemaProblemsError) {
      // Each problem is logged already, with its fix; this is the one line that says why the process stops.
      console.error(`Start-up refused: ${error.message}`);
      Deno.exit(1);
    }
    throw error;
  }
  jobContext.resolve({
    sql: service.sql,
    window: { maxAgeSeconds: config.signatureMaxAgeSeconds, maxFutureSeconds: config.signatureMaxFutureSeconds },
    queryTimeoutMs: config.dbQueryTimeoutMs,
  });
  const scheduled = describeScheduledWork(cron !== undefined);
  log(scheduled.level, "scheduled work", scheduled.fields);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log("info", "shutting down", { signal });
    // Each step of the shutdown is bounded; this is the backstop under Deno Deploy's 5 s before SIGKILL.
    const deadline = setTimeout(() => {
      log("error", "shutdown took too long; exiting", { deadline_ms: SHUTDOWN_DEADLINE_MS });
      Deno.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    await service.shutdown();
    clearTimeout(deadline);
    log("info", "stopped");
    Deno.exit(0);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    try {
      Deno.addSignalListener(signal, () => stop(signal));
    } catch {
      // Some platforms (Windows for SIGTERM) have no such signal.
    }
  }
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (error) {
    console.error(`Start-up failed: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
