import { ConfigError, type Env } from "./read_env.ts";

/** Where the database is, as the service and the tools read it. */
export interface DatabaseSettings {
  /** Unset: the embedded database. */
  databaseUrl?: string;
  /** libpq's PGSSLMODE, which postgres.js does not read itself (see connectPostgres). */
  sslMode?: string;
}

/** DATABASE_URL (checked to be a postgres:// URL, never echoed: it holds the password) and PGSSLMODE. */
export function loadDatabaseSettings(env: Env): DatabaseSettings {
  const databaseUrl = env.text("DATABASE_URL");
  if (databaseUrl !== undefined) checkDatabaseUrl(databaseUrl);
  return { databaseUrl, sslMode: env.text("PGSSLMODE")?.toLowerCase() };
}

function checkDatabaseUrl(value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError("DATABASE_URL is not a valid URL (expected postgres://user:password@host:port/database).");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new ConfigError(`DATABASE_URL must start with postgres:// or postgresql:// (got ${url.protocol}//).`);
  }
}
