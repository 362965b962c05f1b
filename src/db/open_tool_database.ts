import type { Sql } from "postgres";
import type { DatabaseSettings } from "../config/database_settings.ts";
import { EMBEDDED_DATABASE_DIR, EMBEDDED_URL_FILE } from "../config/embedded_files.ts";
import { connectPostgres } from "./connect_postgres.ts";
import { connectTool } from "./connect_tool.ts";
import { databaseHost } from "./database_host.ts";
import { startEmbeddedDatabase } from "./embedded_database.ts";
import { tryLockEmbeddedDatabase } from "./embedded_lock.ts";
import { migrate } from "./migrate.ts";

/** The database a command-line tool works on. */
interface ToolDatabase {
  sql: Sql;
  /** `host:port` (never a password), for a tool's error messages. */
  host: string;
  /** Where it is, in words, for the tool's output (never a password). */
  description: string;
  close(): Promise<void>;
}

/**
 * Opens the database a tool (reconcile, sql) works on, the same one the
 * service would use:
 * 1. `settings.databaseUrl` (DATABASE_URL), when set: connected within a
 *    bound, every statement bounded (see connectTool);
 * 2. else, when no process holds the embedded database (its lock is free),
 *    its files themselves, migrated as `deno task start` would (so a fresh
 *    clone works), holding the lock until closed;
 * 3. else the embedded database of the running `deno task start`, through
 *    the URL it leaves in `.pglite/embedded-url` once it listens (single
 *    statements only: PGlite has one session, shared with the service). The
 *    files are never opened a second time: a tool that cannot reach the
 *    service fails and says why.
 */
export async function openToolDatabase(
  settings: DatabaseSettings,
  dir: string = EMBEDDED_DATABASE_DIR,
): Promise<ToolDatabase> {
  const { databaseUrl } = settings;
  if (databaseUrl !== undefined) {
    const { sql, host, close } = await connectTool(databaseUrl, { max: 2, prepare: true, sslMode: settings.sslMode });
    return { sql, host, description: `DATABASE_URL (${hostOf(databaseUrl)})`, close };
  }
  const lock = await tryLockEmbeddedDatabase(dir);
  if (lock === undefined) return await openRunningService(dir);
  let embedded;
  try {
    embedded = await startEmbeddedDatabase(`${dir}/data`);
  } catch (error) {
    lock.release();
    throw error;
  }
  const sql = connectPostgres(embedded.url, { max: 1, connectTimeoutMs: 5_000, prepare: false });
  const close = async () => {
    await sql.end({ timeout: 5 });
    await embedded.close();
    lock.release();
  };
  try {
    await migrate(sql);
  } catch (error) {
    await close();
    throw error;
  }
  return {
    sql,
    host: databaseHost(embedded.url),
    description: `the embedded database in ${dir} (no service running)`,
    close,
  };
}

/** The embedded database through the service that holds it; never its files. */
async function openRunningService(dir: string): Promise<ToolDatabase> {
  const running = await readUrlFile(`${dir}/${EMBEDDED_URL_FILE}`);
  if (running === undefined) {
    throw new Error(
      `The embedded database in ${dir} is held by another process that serves no URL yet (a deno task start still ` +
        `starting, or another tool): retry once it listens, or stop it.`,
    );
  }
  // Named prepared statements could collide with the service's in PGlite's one session.
  const sql = connectPostgres(running, { max: 1, connectTimeoutMs: 5_000, prepare: false });
  try {
    await sql`select 1`;
  } catch (error) {
    await sql.end({ timeout: 1 });
    throw new Error(
      `The embedded database in ${dir} is held by a running service, which did not answer at ${running}: ` +
        `${(error as Error).message}`,
      { cause: error },
    );
  }
  return {
    sql,
    host: databaseHost(running),
    description: `the embedded database of the running service (${dir})`,
    close: () => sql.end({ timeout: 5 }),
  };
}

async function readUrlFile(path: string): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(path)).trim() || undefined;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

function hostOf(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}${parsed.port ? `:${parsed.port}` : ""}${parsed.pathname}`;
  } catch {
    return "unparsable URL";
  }
}
