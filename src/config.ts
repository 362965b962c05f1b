/** Configuration from the environment, checked once at start-up. */

/** Signature timestamps may be this old: Mailgun retries for about 8 hours and may reuse the original signature. */
export const DEFAULT_SIGNATURE_MAX_AGE_SECONDS = 24 * 60 * 60;
/** Signature timestamps may be this far ahead of our clock. */
export const DEFAULT_SIGNATURE_MAX_FUTURE_SECONDS = 5 * 60;
/** Larger bodies are refused with 413 without being read whole. */
export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;
/** A body that has not arrived whole by then is cut off with 408. */
export const DEFAULT_BODY_TIMEOUT_MS = 10_000;
/** Bound on opening a database connection. */
export const DEFAULT_DB_CONNECT_TIMEOUT_MS = 3_000;
/** Bound on one database statement; Mailgun gives up after about 10 s. */
export const DEFAULT_DB_QUERY_TIMEOUT_MS = 5_000;
/**
 * Bound on one row lock wait (PostgreSQL lock_timeout): a document held `for update` by another
 * session delays its webhook by this much at most per attempt, and never the others of its batch
 * by more than once this.
 */
export const DEFAULT_DB_LOCK_TIMEOUT_MS = 1_000;
/** Bound on the whole wait of one webhook for the database (queue plus statements); Mailgun gives up after about 10 s. */
export const DEFAULT_WEBHOOK_DEADLINE_MS = 6_000;
/** Connections in the pool. */
export const DEFAULT_DB_POOL_MAX = 8;
/** Most events written by one statement. */
export const DEFAULT_BATCH_MAX = 128;
/** Statements in flight at once; the next batch gathers meanwhile. */
export const DEFAULT_BATCH_IN_FLIGHT = 1;
/** Webhooks waiting for a statement; past it, new ones get 503 at once (Mailgun retries) instead of piling up. */
export const DEFAULT_BATCH_QUEUE_MAX = 10_000;
/** Where the embedded database keeps its files (git-ignored). */
export const EMBEDDED_DATABASE_DIR = ".pglite";

/** The service's settings. */
export interface Config {
  port: number;
  /** LISTEN_HOST; HOSTNAME is ignored. */
  hostname: string;
  /** Unset: the embedded database. */
  databaseUrl?: string;
  /** Empty only with the embedded database (a development key is used). */
  signingKeys: string[];
  parentSigningKeys: string[];
  signatureMaxAgeSeconds: number;
  signatureMaxFutureSeconds: number;
  bodyLimitBytes: number;
  bodyTimeoutMs: number;
  dbConnectTimeoutMs: number;
  dbQueryTimeoutMs: number;
  dbLockTimeoutMs: number;
  webhookDeadlineMs: number;
  dbPoolMax: number;
  /** False behind a transaction-mode pooler (PgBouncer, Supavisor). */
  dbPrepare: boolean;
  batchMax: number;
  batchInFlight: number;
  batchQueueMax: number;
}

/** A setting that stops start-up; the message names the variable. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

type Env = (name: string) => string | undefined;

/** Reads and checks the configuration; throws a {@link ConfigError} naming the first bad variable. */
export function loadConfig(env: Env = (name) => Deno.env.get(name)): Config {
  const get = (name: string) => {
    const value = env(name)?.trim();
    return value === "" ? undefined : value;
  };
  const databaseUrl = get("DATABASE_URL");
  if (databaseUrl !== undefined) checkDatabaseUrl(databaseUrl);
  if (databaseUrl === undefined && (get("DENO_DEPLOY") || get("DENO_DEPLOYMENT_ID"))) {
    throw new ConfigError(
      "DATABASE_URL is required on Deno Deploy: the embedded database needs a disk that instances there do not share.",
    );
  }
  const signingKeys = parseKeys(get, "MAILGUN_WEBHOOK_SIGNING_KEY");
  if (databaseUrl !== undefined && signingKeys.length === 0) {
    throw new ConfigError(
      "MAILGUN_WEBHOOK_SIGNING_KEY is required when DATABASE_URL is set (Mailgun > Sending > Webhooks > HTTP webhook signing key).",
    );
  }
  return {
    port: integer(get, "PORT", 8000, 0, 65535),
    // The embedded database is for development, and its signing key is announced: loopback only by default.
    // Not HOSTNAME: Docker and Kubernetes set that to the container's name, which is no address to listen on.
    hostname: get("LISTEN_HOST") ?? (databaseUrl === undefined ? "127.0.0.1" : "0.0.0.0"),
    databaseUrl,
    signingKeys,
    parentSigningKeys: parseKeys(get, "MAILGUN_PARENT_WEBHOOK_SIGNING_KEY"),
    signatureMaxAgeSeconds: integer(
      get,
      "SIGNATURE_MAX_AGE_SECONDS",
      DEFAULT_SIGNATURE_MAX_AGE_SECONDS,
      60,
      7 * 24 * 60 * 60,
    ),
    signatureMaxFutureSeconds: integer(
      get,
      "SIGNATURE_MAX_FUTURE_SECONDS",
      DEFAULT_SIGNATURE_MAX_FUTURE_SECONDS,
      0,
      24 * 60 * 60,
    ),
    bodyLimitBytes: integer(get, "BODY_LIMIT_BYTES", DEFAULT_BODY_LIMIT_BYTES, 1024, 64 * 1024 * 1024),
    bodyTimeoutMs: integer(get, "BODY_TIMEOUT_MS", DEFAULT_BODY_TIMEOUT_MS, 100, 600_000),
    dbConnectTimeoutMs: integer(get, "DB_CONNECT_TIMEOUT_MS", DEFAULT_DB_CONNECT_TIMEOUT_MS, 100, 60_000),
    dbQueryTimeoutMs: integer(get, "DB_QUERY_TIMEOUT_MS", DEFAULT_DB_QUERY_TIMEOUT_MS, 100, 60_000),
    dbLockTimeoutMs: integer(get, "DB_LOCK_TIMEOUT_MS", DEFAULT_DB_LOCK_TIMEOUT_MS, 10, 60_000),
    webhookDeadlineMs: integer(get, "WEBHOOK_DEADLINE_MS", DEFAULT_WEBHOOK_DEADLINE_MS, 100, 60_000),
    dbPoolMax: integer(get, "DB_POOL_MAX", DEFAULT_DB_POOL_MAX, 1, 1000),
    dbPrepare: boolean(get, "DB_PREPARE", true),
    batchMax: integer(get, "BATCH_MAX", DEFAULT_BATCH_MAX, 1, 10_000),
    batchInFlight: integer(get, "BATCH_IN_FLIGHT", DEFAULT_BATCH_IN_FLIGHT, 1, 1000),
    batchQueueMax: integer(get, "BATCH_QUEUE_MAX", DEFAULT_BATCH_QUEUE_MAX, 1, 1_000_000),
  };
}

function checkDatabaseUrl(value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // Never echo the value: it holds the password.
    throw new ConfigError("DATABASE_URL is not a valid URL (expected postgres://user:password@host:port/database).");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new ConfigError(`DATABASE_URL must start with postgres:// or postgresql:// (got ${url.protocol}//).`);
  }
}

function parseKeys(get: Env, name: string): string[] {
  const raw = get(name);
  if (raw === undefined) return [];
  const keys = raw.split(",").map((key) => key.trim()).filter((key) => key !== "");
  if (keys.length === 0) {
    throw new ConfigError(`${name} holds no key (expected one key, or several separated by commas).`);
  }
  return keys;
}

function integer(get: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = get(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max} (got "${raw}").`);
  }
  return value;
}

function boolean(get: Env, name: string, fallback: boolean): boolean {
  const raw = get(name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (["true", "1", "yes", "on"].includes(raw)) return true;
  if (["false", "0", "no", "off"].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false (got "${raw}").`);
}
