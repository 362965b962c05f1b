import type { ReservedSql, Sql } from "postgres";
import { boundStatements } from "./bounded_statements.ts";
import { withTimeout } from "./with_timeout.ts";

/** How `migrate` bounds its statements and says what it waits for. */
export interface MigrateOptions {
  /**
   * Bound on each statement but concurrent index builds (which may run long
   * on a large table: they are reported instead). Unset: no bound.
   */
  statementTimeoutMs?: number;
  /** `host:port`, for a timeout's message. */
  host?: string;
  /**
   * Told what the run waits for: another migration's lock (once, then every
   * 10 s), a table lock, a long index build. Needs a pool of two connections
   * or more (the watch asks pg_locks on the second). Unset: silent.
   */
  report?: (line: string) => void;
}

/** How often a wait is reported again. */
export const WAIT_REPORT_MS = 10_000;
/** Bound on one question the watch asks (pg_locks, pg_stat_activity). */
const WATCH_QUERY_TIMEOUT_MS = 5_000;

const CONCURRENTLY = /^\s*(?:create|drop)\s+(?:unique\s+)?index\s+concurrently\b/i;

/**
 * The reserved connection a migration runs on, its statements bounded and
 * watched as `options` says (as it is when it says nothing).
 */
export async function watchMigration(pool: Sql, conn: ReservedSql, options: MigrateOptions): Promise<ReservedSql> {
  const { statementTimeoutMs, report } = options;
  if (statementTimeoutMs === undefined && report === undefined) return conn;
  const host = options.host ?? "the database";
  const timeoutMs = statementTimeoutMs ?? 2 ** 31 - 1;
  let onSlow: ((text: string, elapsedMs: number) => Promise<string | undefined>) | undefined;
  if (report !== undefined && (pool.options?.max ?? 1) >= 2) {
    const [{ pid }] = await withTimeout(conn`select pg_backend_pid() as pid`, timeoutMs, () => new Error("no pid"));
    onSlow = async (text, elapsedMs) => {
      const waiting = await lockWaitOf(pool, Number(pid));
      const seconds = Math.round(elapsedMs / 1000);
      if (waiting !== undefined) report(`  Waiting ${seconds} s for ${waiting}`);
      else if (CONCURRENTLY.test(text)) report(`  Still running (${seconds} s, no time bound): ${firstLine(text)}`);
      else report(`  Still running (${seconds} s): ${firstLine(text)}`);
      return waiting;
    };
  }
  return boundStatements(conn, {
    timeoutMs,
    host,
    unbounded: (text) => CONCURRENTLY.test(text),
    onSlow,
    watchEveryMs: WAIT_REPORT_MS,
    oneSession: true,
  });
}

/**
 * What the backend `pid` waits for, in words: a lock on a table (with the
 * sessions that hold it), or the end of other transactions (a concurrent
 * index build waits for them); undefined when it waits for no lock.
 */
async function lockWaitOf(pool: Sql, pid: number): Promise<string | undefined> {
  const rows = await withTimeout(
    pool`
      select l.locktype, l.mode, l.relation::regclass::text as relation,
        (select string_agg(a.pid || coalesce(' (' || nullif(a.application_name, '') || ')', ''), ', ')
         from pg_stat_activity a where a.pid = any(pg_blocking_pids(${pid}))) as holders
      from pg_locks l
      where l.pid = ${pid} and not l.granted
      limit 1
    `,
    WATCH_QUERY_TIMEOUT_MS,
    () => new Error("pg_locks did not answer"),
  );
  if (rows.length === 0) return undefined;
  const { locktype, mode, relation, holders } = rows[0];
  const what = relation
    ? `a lock (${mode}) on table ${relation}`
    : locktype === "virtualxid" || locktype === "transactionid"
    ? "older transactions to end"
    : `a ${locktype} lock`;
  return holders ? `${what}, held by pid ${holders}` : what;
}

/**
 * Who holds the session advisory lock `key`, in words (pid, application
 * name, since when), as far as pg_locks and pg_stat_activity tell.
 */
export async function advisoryLockHolder(conn: ReservedSql, key: number): Promise<string> {
  const rows = await withTimeout(
    conn`
      select a.pid, nullif(a.application_name, '') as application_name,
        extract(epoch from now() - a.backend_start)::int as seconds
      from pg_locks l
      left join pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'advisory' and l.granted and l.objsubid = 1
        and l.classid = (${key}::bigint >> 32)::oid and l.objid = (${key}::bigint & 4294967295)::oid
      limit 1
    `,
    WATCH_QUERY_TIMEOUT_MS,
    () => new Error("pg_locks did not answer"),
  ).catch(() => []);
  if (rows.length === 0 || rows[0].pid === null) return "another migration holds the migration lock";
  const { pid, application_name: app, seconds } = rows[0];
  return `another migration holds the migration lock: pid ${pid}${app ? ` (${app})` : ""}` +
    (seconds !== null ? `, connected ${seconds} s ago` : "");
}

function firstLine(text: string): string {
  const line = text.trim().split("\n", 1)[0];
  return line.length > 80 ? `${line.slice(0, 77)}...` : line;
}
