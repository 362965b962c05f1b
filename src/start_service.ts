import type { Sql } from "postgres";
import { createBatchWriter } from "./batch_writer/batch_writer.ts";
import { loadDevSigningKey } from "./config/dev_signing_key.ts";
import { EMBEDDED_DATABASE_DIR, EMBEDDED_URL_FILE } from "./config/embedded_files.ts";
import type { Config } from "./config/service_config.ts";
import { checkDatabaseAtStart, logStandIns } from "./db/check_database_at_start.ts";
import { connectPostgres } from "./db/connect_postgres.ts";
import { createHostSchemaMonitor, HostSchemaProblemsError } from "./db/host_schema_monitor.ts";
import { migrate } from "./db/migrate.ts";
import { shippedMigrations } from "./db/schema_status.ts";
import { findStandInTables } from "./db/stand_in_tables_query.ts";
import { createHandler } from "./http/create_handler.ts";
import { drainable, SHUTDOWN_BUDGET_MS, within } from "./http/drain_requests.ts";
import { importSigningKeys } from "./mailgun/verify_signature.ts";
import { startTokenPruner } from "./pruning/token_pruner.ts";
import { log } from "./reporting/log.ts";

/** How often, at most, the API's schema is checked again (it serves /healthz, which is polled). */
const HOST_SCHEMA_CHECK_EVERY_MS = 60_000;
/** After a webhook the schema refused, the check runs again, at most once in this time. */
const HOST_SCHEMA_RECHECK_ON_REFUSAL_MS = 5_000;

/** A running service. */
interface Service {
  /** Where it listens, e.g. `http://127.0.0.1:8000`. */
  url: string;
  sql: Sql;
  /** Stops accepting, finishes what is in flight, closes the pool and the embedded database. */
  shutdown(): Promise<void>;
}

/**
 * Opens the database (the embedded one when DATABASE_URL is unset, migrated
 * on the spot), imports the signing keys once, and serves. Prunes consumed
 * tokens on its own timer unless `options.pruneOnTimer` is false (Deno.cron
 * does it: src/scheduling/scheduled_jobs.ts).
 */
export async function startService(config: Config, options: { pruneOnTimer?: boolean } = {}): Promise<Service> {
  const embedded = config.databaseUrl === undefined ? await openEmbeddedDatabase(EMBEDDED_DATABASE_DIR) : undefined;
  const sql = connectPostgres(embedded?.url ?? config.databaseUrl!, {
    // PGlite has a single session: one connection, one statement at a time.
    max: embedded ? 1 : config.dbPoolMax,
    connectTimeoutMs: config.dbConnectTimeoutMs,
    prepare: config.dbPrepare,
    sslMode: config.sslMode,
  });
  try {
    let keys = config.signingKeys;
    const migrations = await shippedMigrations();
    if (embedded) {
      const applied = await migrate(sql);
      log("warn", "using the EMBEDDED database (development only)", {
        dir: EMBEDDED_DATABASE_DIR,
        migrations_applied: applied,
      });
      const standIns = await findStandInTables(sql, config.dbQueryTimeoutMs);
      if (standIns.length > 0) logStandIns(standIns, "embedded");
      if (keys.length === 0) {
        const dev = await loadDevSigningKey(EMBEDDED_DATABASE_DIR);
        keys = [dev.key];
        // A development key is announced, with its value, so that it can be used to sign test requests.
        log("warn", "using a DEVELOPMENT signing key: set MAILGUN_WEBHOOK_SIGNING_KEY for real traffic", {
          development_signing_key: dev.key,
          file: dev.path,
        });
      }
    }
    // A schema that would refuse statuses is refused at start, when the database answers within the
    // connect timeout; when it does not, the service starts as before, and the check runs again when
    // /healthz (or a refused webhook) finds the database up: from then on /healthz says 503.
    const hostSchema = createHostSchemaMonitor(sql, {
      maxAgeMs: HOST_SCHEMA_CHECK_EVERY_MS,
      refusalRecheckMs: HOST_SCHEMA_RECHECK_ON_REFUSAL_MS,
      timeoutMs: config.dbConnectTimeoutMs,
    });
    const refusing = await hostSchema.refusing();
    if (refusing !== undefined && refusing.length > 0) throw new HostSchemaProblemsError(refusing);
    const window = { maxAgeSeconds: config.signatureMaxAgeSeconds, maxFutureSeconds: config.signatureMaxFutureSeconds };
    const writer = createBatchWriter(sql, {
      maxBatch: config.batchMax,
      maxInFlight: embedded ? 1 : config.batchInFlight,
      gatherMs: config.batchGatherMs,
      queryTimeoutMs: config.dbQueryTimeoutMs,
      lockTimeoutMs: config.dbLockTimeoutMs,
      deadlineMs: config.webhookDeadlineMs,
      maxQueued: config.batchQueueMax,
      maxQueueWaitMs: config.batchQueueWaitMaxMs,
      // A refusal says the schema changed since the last check: look again soon, so that the log says what to change.
      onSchemaRefused: () => hostSchema.afterRefusal(),
    });
    const requests = drainable(createHandler({
      signingKeys: importSigningKeys(keys),
      parentSigningKeys: importSigningKeys(config.parentSigningKeys),
      window,
      bodyLimitBytes: config.bodyLimitBytes,
      bodyTimeoutMs: config.bodyTimeoutMs,
      writer,
      sql,
      healthTimeoutMs: config.dbQueryTimeoutMs,
      migrations,
      hostSchema,
    }));
    if (!embedded) void checkDatabaseAtStart(sql, migrations, config.databaseUrl!, config.dbConnectTimeoutMs);
    const stopPruner = options.pruneOnTimer === false
      ? () => {}
      : startTokenPruner(sql, window, { firstDelayMs: config.tokenPruneFirstDelayMs });
    const { promise: listening, resolve: onListen } = Promise.withResolvers<Deno.NetAddr>();
    const server = Deno.serve({ port: config.port, hostname: config.hostname, onListen }, requests.handler);
    const addr = await listening;
    // Tools (sql, reconcile) reach the running embedded database through this file: written once the service listens.
    if (embedded) await Deno.writeTextFile(`${EMBEDDED_DATABASE_DIR}/${EMBEDDED_URL_FILE}`, embedded.url + "\n");
    const host = addr.hostname === "0.0.0.0" ? "127.0.0.1" : addr.hostname;
    const url = `http://${host}:${addr.port}`;
    log("info", "listening", { url, signing_keys: keys.length, database: embedded ? "embedded" : "postgres" });
    return {
      url,
      sql,
      async shutdown() {
        // Every step is bounded (SHUTDOWN_BUDGET_MS): the whole stays under Deno Deploy's 5 s grace after SIGINT.
        stopPruner();
        await requests.drain(SHUTDOWN_BUDGET_MS.drain);
        await within(server.shutdown(), SHUTDOWN_BUDGET_MS.server);
        await within(writer.drain(), SHUTDOWN_BUDGET_MS.writer);
        await sql.end({ timeout: SHUTDOWN_BUDGET_MS.pool / 1000 });
        if (embedded) await Deno.remove(`${EMBEDDED_DATABASE_DIR}/${EMBEDDED_URL_FILE}`).catch(() => {});
        await embedded?.close();
      },
    };
  } catch (error) {
    await sql.end({ timeout: 1 });
    await embedded?.close();
    throw error;
  }
}

/** Loaded only when used: PGlite is large, and production (cold starts on Deno Deploy) never needs it. */
async function openEmbeddedDatabase(dir: string) {
  const { openOwnedEmbeddedDatabase } = await import("./db/embedded_database.ts");
  return await openOwnedEmbeddedDatabase(dir);
}
