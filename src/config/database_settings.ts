import { z } from "zod";
import { choiceVariable } from "./env_variables.ts";
import { type EnvSource, readEnv } from "./read_env.ts";

/** PostgreSQL's TLS modes (libpq's sslmode): anything else is a typo that must not fall back to plain text. */
const POSTGRES_SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const;

/**
 * DATABASE_URL (unset: the embedded database), checked to be a postgres://
 * URL whose `sslmode`, if any, is PostgreSQL's; never echoed: it holds the
 * password.
 */
const databaseUrl = z.string().superRefine((value, context) => {
  const problem = databaseUrlProblem(value);
  if (problem !== undefined) context.addIssue({ code: "custom", message: problem });
}).optional();

/** The variables that say where the database is, as the service and the tools read them. */
export const databaseVariables = z.object({
  DATABASE_URL: databaseUrl,
  /** libpq's PGSSLMODE, which postgres.js does not read itself (see connectPostgres). */
  PGSSLMODE: choiceVariable(POSTGRES_SSL_MODES),
});

/** Where the database is. */
export interface DatabaseSettings {
  /** Unset: the embedded database. */
  databaseUrl?: string;
  /** PGSSLMODE, in lower case; applied when DATABASE_URL names no TLS mode. */
  sslMode?: (typeof POSTGRES_SSL_MODES)[number];
}

/** Reads DATABASE_URL and PGSSLMODE; throws a ConfigError naming the bad one. */
export function loadDatabaseSettings(source?: EnvSource): DatabaseSettings {
  const env = readEnv(databaseVariables, source);
  return { databaseUrl: env.DATABASE_URL, sslMode: env.PGSSLMODE };
}

function databaseUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "is not a valid URL (expected postgres://user:password@host:port/database).";
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    return `must start with postgres:// or postgresql:// (got ${url.protocol}//).`;
  }
  const sslMode = url.searchParams.get("sslmode");
  if (sslMode !== null && !(POSTGRES_SSL_MODES as readonly string[]).includes(sslMode)) {
    // The mode is no secret (the password is never quoted); a typo must not connect without TLS.
    return `has sslmode=${JSON.stringify(sslMode)}, which is not PostgreSQL's (expected ${
      POSTGRES_SSL_MODES.join(", ")
    }).`;
  }
  return undefined;
}
