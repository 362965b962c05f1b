import postgres from "postgres";
import { startEmbeddedDatabase } from "../../src/db/embedded_database.ts";

/** A fresh, empty database for one test file. */
export interface TestDatabase {
  url: string;
  /** "postgres" when DATABASE_URL is set, else "embedded" (PGlite in memory). */
  kind: "postgres" | "embedded";
  /** Pool size the service may use against it (PGlite has one session). */
  poolMax: number;
  drop(): Promise<void>;
}

/**
 * On the real PostgreSQL when DATABASE_URL is set (a new database beside the
 * one it names, dropped afterwards), else on an in-memory PGlite.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = Deno.env.get("DATABASE_URL");
  if (!adminUrl) {
    const embedded = await startEmbeddedDatabase("memory://");
    return { url: embedded.url, kind: "embedded", poolMax: 1, drop: () => embedded.close() };
  }
  const name = `mgwh_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    kind: "postgres",
    poolMax: 8,
    async drop() {
      const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}
