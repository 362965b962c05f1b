import type { ReservedSql, Sql } from "postgres";
import { sha256Hex } from "../encoding/sha256_hex.ts";
import { becomeHostTablesOwner, type HostTablesRole, hostTablesRole } from "./host_tables_role.ts";
import { adoptLegacyRecord } from "./legacy_record.ts";
import { advisoryLockHolder, type MigrateOptions, WAIT_REPORT_MS, watchMigration } from "./migration_watch.ts";
import { splitStatements } from "./split_statements.ts";

/** Where the schema's migrations live. */
export const MIGRATIONS_DIR = new URL("../../migrations/", import.meta.url);

/**
 * A migration whose header (its leading comment lines) holds this runs
 * outside a transaction, statement by statement (for `create index
 * concurrently`). It must be safe to run again from its start: a failure
 * half-way leaves it unrecorded.
 */
const NO_TRANSACTION_MARKER = "-- migrate: no-transaction";
/** A migration whose header holds this changes the API's own tables (a column, indexes). */
const HOST_TABLES_MARKER = "-- migrate: host-tables";

/** Any fixed number: the advisory lock that serialises concurrent migrations. */
const MIGRATION_LOCK_KEY = 7_240_431_001;
/** How often a waiting runner asks for the lock again. */
const LOCK_POLL_MS = 200;
/**
 * How long a transactional migration waits for a lock on the API's tables
 * before giving up: meanwhile every write of the API would queue behind it.
 */
const LOCK_TIMEOUT = "10s";

/** One migration file. */
interface MigrationFile {
  name: string;
  script: string;
  /** SHA-256 hex of the script, line endings normalised (a checkout with CRLF is the same file). */
  checksum: string;
  noTransaction: boolean;
  /** Changes the API's tables, which only their owner may do. */
  hostTables: boolean;
}

/** The `.sql` files of `dir`, in name order. */
async function readMigrations(dir: URL = MIGRATIONS_DIR): Promise<MigrationFile[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith(".sql")) names.push(entry.name);
  }
  names.sort();
  return await Promise.all(names.map(async (name) => {
    const script = (await Deno.readTextFile(new URL(name, dir))).replaceAll("\r\n", "\n");
    const header = leadingComments(script);
    return {
      name,
      script,
      checksum: sha256Hex(script),
      noTransaction: header.includes(NO_TRANSACTION_MARKER),
      hostTables: header.includes(HOST_TABLES_MARKER),
    };
  }));
}

/** The comment lines a script starts with, trimmed. */
function leadingComments(script: string): string[] {
  const lines: string[] = [];
  for (const line of script.split("\n")) {
    if (!line.trim().startsWith("--")) break;
    lines.push(line.trim());
  }
  return lines;
}

/**
 * Applies the `.sql` files of `dir` not applied yet, in name order, each in
 * its own transaction (or statement by statement, see
 * {@link NO_TRANSACTION_MARKER}), under a session advisory lock held on one
 * connection: running it twice, or twice at the same moment, is safe.
 * Refuses to run when a file already applied has changed since. Returns the
 * names it applied. `options` bound its statements and have it say what it
 * waits for (see MigrateOptions).
 */
export async function migrate(sql: Sql, dir: URL = MIGRATIONS_DIR, options: MigrateOptions = {}): Promise<string[]> {
  const files = await readMigrations(dir);
  const reserved = await sql.reserve();
  try {
    const conn = await watchMigration(sql, reserved, options);
    await acquireLock(conn, options.report);
    try {
      return await applyMissing(conn, files);
    } finally {
      // A failed unlock (the session is gone) must not hide why the run failed: the lock ends with the session.
      await conn`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.catch(() => {});
    }
  } finally {
    reserved.release();
  }
}

/**
 * Polls with pg_try_advisory_lock rather than waiting in pg_advisory_lock: a
 * statement waiting for the lock holds a snapshot, and `create index
 * concurrently` in the lock holder waits for every older snapshot (a deadlock).
 * Tells `report` who holds it, once, then every WAIT_REPORT_MS.
 */
async function acquireLock(conn: ReservedSql, report?: (line: string) => void): Promise<void> {
  const started = Date.now();
  let reportedAt: number | undefined;
  while (true) {
    const [row] = await conn`select pg_try_advisory_lock(${MIGRATION_LOCK_KEY}) as locked`;
    if (row.locked) {
      if (reportedAt !== undefined) {
        report?.(`Got the migration lock after ${Math.round((Date.now() - started) / 1000)} s.`);
      }
      return;
    }
    if (report !== undefined && (reportedAt === undefined || Date.now() - reportedAt >= WAIT_REPORT_MS)) {
      report(`Waiting: ${await advisoryLockHolder(conn, MIGRATION_LOCK_KEY)}.`);
      reportedAt = Date.now();
    }
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
  }
}

async function applyMissing(conn: ReservedSql, files: MigrationFile[]): Promise<string[]> {
  await conn`begin`;
  try {
    await conn`create schema if not exists mailgun_webhook`;
    await conn`
      create table if not exists mailgun_webhook.schema_migrations (
        name text primary key,
        checksum text not null,
        applied_at timestamptz not null default now()
      )
    `;
    await adoptLegacyRecord(conn);
    await conn`commit`;
  } catch (error) {
    await conn`rollback`.catch(() => {});
    throw error;
  }
  const recorded = new Map<string, string>();
  for (const row of await conn`select name, checksum from mailgun_webhook.schema_migrations`) {
    recorded.set(row.name as string, row.checksum as string);
  }
  for (const file of files) {
    const checksum = recorded.get(file.name);
    if (checksum === undefined) continue;
    if (checksum !== file.checksum) {
      throw new Error(
        `Migration ${file.name} has changed since it was applied (checksum ${checksum.slice(0, 12)}, ` +
          `now ${file.checksum.slice(0, 12)}): restore it and put the change in a new migration.`,
      );
    }
  }
  const pending = files.filter((file) => !recorded.has(file.name));
  // Nothing is applied when a host-tables step could not be: a half-upgraded schema would stay behind.
  if (pending.some((file) => file.hostTables)) {
    const role = await hostTablesRole(conn);
    if (role.kind === "refused") throw new Error(role.message);
  }
  const done: string[] = [];
  for (const file of pending) {
    try {
      // Asked again for each file: 0008 may have just created stand-in tables, owned by the current role.
      const role = file.hostTables ? await hostTablesRole(conn) : undefined;
      if (file.noTransaction) await applyOutsideTransaction(conn, file, role);
      else await applyInTransaction(conn, file, role);
    } catch (error) {
      throw new Error(`Migration ${file.name} failed: ${(error as Error).message}`, { cause: error });
    }
    done.push(file.name);
  }
  return done;
}

async function applyInTransaction(conn: ReservedSql, file: MigrationFile, role?: HostTablesRole): Promise<void> {
  await conn`begin`;
  try {
    await conn.unsafe(`set local lock_timeout = '${LOCK_TIMEOUT}'`);
    if (role !== undefined) await becomeHostTablesOwner(conn, role, true);
    // A migration file is trusted SQL from the repository, with no values in it.
    await conn.unsafe(file.script);
    // The record is the service role's, whoever changed the API's tables.
    if (role?.kind === "set") await conn`reset role`;
    await conn`insert into mailgun_webhook.schema_migrations (name, checksum) values (${file.name}, ${file.checksum})`;
    await conn`commit`;
  } catch (error) {
    await conn`rollback`.catch(() => {});
    throw error;
  }
}

async function applyOutsideTransaction(conn: ReservedSql, file: MigrationFile, role?: HostTablesRole): Promise<void> {
  const statements = splitStatements(file.script);
  if (role !== undefined) await becomeHostTablesOwner(conn, role, false);
  try {
    await dropInvalidIndexes(conn, statements);
    // One statement per query: several in one query string would form an implicit transaction.
    for (const statement of statements) await conn.unsafe(statement);
  } finally {
    if (role?.kind === "set") await conn`reset role`;
  }
  await conn`insert into mailgun_webhook.schema_migrations (name, checksum) values (${file.name}, ${file.checksum})`;
}

/**
 * A `create index concurrently` that failed (or was cancelled) leaves an
 * INVALID index behind, which `if not exists` would then keep: drop those the
 * file builds, so that it builds them again. Under the lock, no other runner
 * is building them at this moment.
 */
async function dropInvalidIndexes(conn: ReservedSql, statements: string[]): Promise<void> {
  const names = statements.map(indexBuiltBy).filter((name): name is string => name !== undefined);
  if (names.length === 0) return;
  const invalid = await conn`
    select c.relname as name
    from pg_index i
    join pg_class c on c.oid = i.indexrelid
    where not i.indisvalid
      and c.relnamespace = current_schema()::regnamespace
      and c.relname = any(${names})
  `;
  for (const row of invalid) await conn`drop index concurrently if exists ${conn(row.name as string)}`;
}

const CREATE_INDEX = /^create\s+(?:unique\s+)?index\s+concurrently\s+(?:if\s+not\s+exists\s+)?("?)([A-Za-z_][\w$]*)\1/i;

/** The name of the index a `create index concurrently` statement builds. */
function indexBuiltBy(statement: string): string | undefined {
  const match = CREATE_INDEX.exec(statement);
  if (match === null) return undefined;
  return match[1] === '"' ? match[2] : match[2].toLowerCase();
}
