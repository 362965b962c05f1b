/**
 * The CPU that PostgreSQL's processes spend on a piece of work, read from
 * Linux's /proc: the postmaster's own time, its live children's (backends,
 * WAL writer, checkpointer, ...), and its reaped children's (cutime and
 * cstime: the backends of connections that closed). The sum only ever grows,
 * whether a backend lives through the window or not, so its difference over
 * a window is what the whole server spent in it. Needs a PostgreSQL on this
 * machine whose /proc we can read; otherwise the figures are null.
 *
 * The postmaster serves every database of the cluster: on a shared machine,
 * other databases' work lands in the same figure. `otherTransactions` says
 * whether there was any (from pg_stat_database, which may lag by seconds).
 */
import type { Sql } from "postgres";
import { readProcFiles, TICKS_PER_SECOND } from "./proc_stats.ts";

/** What PostgreSQL spent over one window. */
export interface PostgresCpu {
  /** CPU seconds of all of PostgreSQL's processes, those that exited included; null when /proc is out of reach. */
  cpuSeconds: number | null;
  /** Transactions committed or rolled back meanwhile in the cluster's other databases (approximate). */
  otherTransactions: number;
  /** Transactions committed meanwhile in this database (approximate): the service's statements, one per batch. */
  ownCommits: number;
}

/** The postmaster's pid: the parent of this connection's backend; null when it is not a local process we can read. */
export async function findPostmaster(sql: Sql): Promise<number | null> {
  const [{ pid }] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
  const stat = readProcFiles([`/proc/${pid}/stat`])[0];
  if (stat === undefined) return null;
  const ppid = Number(statFields(stat)[1]);
  const parent = readProcFiles([`/proc/${ppid}/stat`])[0];
  // The postmaster's command name is "postgres" (or "postmaster" on older packagings).
  return parent !== undefined && /\((postgres|postmaster)\)/.test(parent) ? ppid : null;
}

/** CPU seconds that PostgreSQL's processes have used so far, the exited ones included. */
export function postgresCpuSeconds(postmaster: number): number {
  const children = (readProcFiles([`/proc/${postmaster}/task/${postmaster}/children`])[0] ?? "").trim()
    .split(/\s+/).filter((pid) => pid !== "");
  const stats = readProcFiles([postmaster, ...children].map((pid) => `/proc/${pid}/stat`));
  let ticks = 0;
  for (const [i, stat] of stats.entries()) {
    if (stat === undefined) continue;
    const fields = statFields(stat);
    // utime, stime (fields 14, 15 of the line); the postmaster adds cutime, cstime (16, 17).
    ticks += Number(fields[11]) + Number(fields[12]);
    if (i === 0) ticks += Number(fields[13]) + Number(fields[14]);
  }
  return ticks / TICKS_PER_SECOND;
}

/** Runs `work` and returns its result with what PostgreSQL spent meanwhile. */
export async function measurePostgres<T>(
  sql: Sql,
  postmaster: number | null,
  work: () => Promise<T>,
): Promise<{ result: T; postgres: PostgresCpu }> {
  const othersBefore = await otherDatabasesTransactions(sql);
  const ownBefore = await ownCommits(sql);
  const connections = await clientBackends(sql);
  const before = postmaster === null ? null : postgresCpuSeconds(postmaster);
  const result = await work();
  await settled(sql, connections);
  const after = postmaster === null ? null : postgresCpuSeconds(postmaster);
  const othersAfter = await otherDatabasesTransactions(sql);
  const ownAfter = await ownCommits(sql);
  return {
    result,
    postgres: {
      cpuSeconds: before === null || after === null ? null : after - before,
      otherTransactions: othersAfter - othersBefore,
      // Less this function's own reads in between (one transaction each).
      ownCommits: Math.max(0, ownAfter - ownBefore - 3),
    },
  };
}

/** Microseconds of PostgreSQL CPU per unit of work, or null when unknown. */
export function microsecondsPer(postgres: PostgresCpu, units: number): number | null {
  return postgres.cpuSeconds === null || units <= 0 ? null : (postgres.cpuSeconds * 1e6) / units;
}

/** Client backends connected to this database. */
async function clientBackends(sql: Sql): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity where datname = current_database() and backend_type = 'client backend'
  `;
  return n;
}

/**
 * Waits (up to 5 s) until the connections the work opened have closed, then a
 * little more: a backend leaves pg_stat_activity before its process ends, and
 * its CPU reaches the postmaster's cutime only once the postmaster reaps it.
 * Read earlier, an exiting backend can be in neither the children nor cutime.
 */
async function settled(sql: Sql, connections: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  while ((await clientBackends(sql)) > connections && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
}

async function ownCommits(sql: Sql): Promise<number> {
  // pg_stat_database lags by up to a second: a snapshot taken now is as fresh as it gets.
  await sql`select pg_stat_clear_snapshot()`;
  const [{ n }] = await sql<{ n: string }[]>`
    select xact_commit::text as n from pg_stat_database where datname = current_database()
  `;
  return Number(n);
}

async function otherDatabasesTransactions(sql: Sql): Promise<number> {
  const [{ n }] = await sql<{ n: string }[]>`
    select coalesce(sum(xact_commit + xact_rollback), 0)::text as n
    from pg_stat_database
    where datname is distinct from current_database()
  `;
  return Number(n);
}

/** The fields of a /proc/<pid>/stat line after the command name (which may hold spaces): [state, ppid, ...]. */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}
