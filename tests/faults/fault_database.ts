/**
 * A fresh, migrated PostgreSQL database for one fault test, and the ways the
 * tests hurt it. Faults need the real PostgreSQL: the embedded one has a
 * single in-process session and nothing to cut.
 */
import postgres, { type Sql } from "postgres";
import { migrate } from "../../src/db/migrate.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/test_database.ts";

/** The application name of the suite's own connections (the service's are `comprobify-mailgun-webhook`). */
export const SUITE_APPLICATION_NAME = "mailgun-fault-suite";

/** A migrated database on the real PostgreSQL, with a pool for checks and an admin pool for faults. */
export interface FaultDatabase {
  url: string;
  name: string;
  /** For setting rows up and checking them (not the service's pool). */
  sql: Sql;
  /** Connections the service holds to this database now. */
  serviceConnections(): Promise<number>;
  /** Terminates every backend connected to this database; returns how many it ended. */
  cutConnections(): Promise<number>;
  /**
   * Takes the database away, as in a failover: new connections are refused
   * and every existing one is ended. Returns how many it ended.
   */
  refuseConnections(): Promise<number>;
  /** Brings the database back after {@link FaultDatabase.refuseConnections}. */
  allowConnections(): Promise<void>;
  drop(): Promise<void>;
}

/** The admin URL, or a clear failure: fault tests run only against the real PostgreSQL. */
export function requirePostgresUrl(): string {
  const url = Deno.env.get("DATABASE_URL");
  if (!url) {
    throw new Error(
      "The fault suite needs the real PostgreSQL: DATABASE_URL=postgres://root@127.0.0.1:5432/test deno task faults",
    );
  }
  return url;
}

/** Creates and migrates a fresh database beside the one DATABASE_URL names. */
export async function createFaultDatabase(): Promise<FaultDatabase> {
  const adminUrl = requirePostgresUrl();
  const db: TestDatabase = await createTestDatabase();
  const name = new URL(db.url).pathname.slice(1);
  // Named apart from the service's connections, so that the tests can count the service's alone.
  const sql = postgres(db.url, {
    max: 4,
    onnotice: () => {},
    connection: { application_name: SUITE_APPLICATION_NAME },
  });
  await migrate(sql);
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });

  async function terminate(): Promise<number> {
    const rows = await admin`
      select pg_terminate_backend(pid) as ended
      from pg_stat_activity
      where datname = ${name} and pid <> pg_backend_pid()
    `;
    return rows.filter((row) => row.ended).length;
  }

  return {
    url: db.url,
    name,
    sql,
    cutConnections: terminate,
    async serviceConnections() {
      const [row] = await admin`
        select count(*)::int as n from pg_stat_activity
        where datname = ${name} and application_name = 'comprobify-mailgun-webhook'
      `;
      return row.n;
    },
    async refuseConnections() {
      // The database name comes from createTestDatabase (letters and hex digits), never from input.
      await admin.unsafe(`alter database ${name} with allow_connections false`);
      return await terminate();
    },
    async allowConnections() {
      await admin.unsafe(`alter database ${name} with allow_connections true`);
    },
    async drop() {
      await sql.end({ timeout: 5 });
      await admin.end({ timeout: 5 });
      await db.drop();
    },
  };
}
