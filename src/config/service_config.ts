/** The service's configuration, read from the environment once at start-up. */
import { loadDatabaseSettings } from "./database_settings.ts";
import { ConfigError, type EnvSource, readEnv } from "./read_env.ts";

/** Signature timestamps may be this old: Mailgun retries for about 8 hours and may reuse the original signature. */
export const DEFAULT_SIGNATURE_MAX_AGE_SECONDS = 24 * 60 * 60;
/** Signature timestamps may be this far ahead of our clock. */
export const DEFAULT_SIGNATURE_MAX_FUTURE_SECONDS = 5 * 60;
/** The largest SIGNATURE_MAX_AGE_SECONDS accepted. */
export const SIGNATURE_MAX_AGE_SECONDS_LIMIT = 7 * 24 * 60 * 60;
/** The largest SIGNATURE_MAX_FUTURE_SECONDS accepted: token pruning keeps every day this reaches ahead, whatever an instance's own. */
export const SIGNATURE_MAX_FUTURE_SECONDS_LIMIT = 24 * 60 * 60;
/** Larger bodies are refused with 413 without being read whole. */
const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;
/** A body that has not arrived whole by then is cut off with 408. */
const DEFAULT_BODY_TIMEOUT_MS = 10_000;
/** Bound on opening a database connection. */
const DEFAULT_DB_CONNECT_TIMEOUT_MS = 3_000;
/** Bound on one database statement; Mailgun gives up after about 10 s. */
const DEFAULT_DB_QUERY_TIMEOUT_MS = 5_000;
/**
 * Bound on one row lock wait (PostgreSQL lock_timeout): a document held `for update` by another
 * session delays its webhook by this much at most per attempt, and never the others of its batch
 * by more than once this.
 */
export const DEFAULT_DB_LOCK_TIMEOUT_MS = 1_000;
/** Bound on the whole wait of one webhook for the database (queue plus statements); Mailgun gives up after about 10 s. */
const DEFAULT_WEBHOOK_DEADLINE_MS = 6_000;
/** Connections in the pool. */
const DEFAULT_DB_POOL_MAX = 8;
/** Most events written by one statement. */
const DEFAULT_BATCH_MAX = 128;
/** Statements in flight at once; the next batch gathers meanwhile. */
const DEFAULT_BATCH_IN_FLIGHT = 1;
/** Webhooks waiting for a statement; past it, new ones get 503 at once (Mailgun retries) instead of piling up. */
export const DEFAULT_BATCH_QUEUE_MAX = 10_000;
/** The first token pruning, soon after start: instances on Deno Deploy may not live for a whole interval. */
const DEFAULT_TOKEN_PRUNE_FIRST_DELAY_MS = 30_000;
/** The service's settings. */
export interface Config {
  port: number;
  /** LISTEN_HOST; HOSTNAME is ignored. */
  hostname: string;
  /** Unset: the embedded database. */
  databaseUrl?: string;
  /** PGSSLMODE, applied when DATABASE_URL names no TLS mode. */
  sslMode?: string;
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
  tokenPruneFirstDelayMs: number;
}

/** Reads and checks the configuration; throws a {@link ConfigError} naming the first bad variable. */
export function loadConfig(source?: EnvSource): Config {
  const env = readEnv(source);
  const { databaseUrl, sslMode } = loadDatabaseSettings(env);
  if (databaseUrl === undefined && (env.text("DENO_DEPLOY") || env.text("DENO_DEPLOYMENT_ID"))) {
    throw new ConfigError(
      "DATABASE_URL is required on Deno Deploy: the embedded database needs a disk that instances there do not share.",
    );
  }
  const signingKeys = env.keys("MAILGUN_WEBHOOK_SIGNING_KEY");
  if (databaseUrl !== undefined && signingKeys.length === 0) {
    throw new ConfigError(
      "MAILGUN_WEBHOOK_SIGNING_KEY is required when DATABASE_URL is set (Mailgun > Sending > Webhooks > HTTP webhook signing key).",
    );
  }
  return {
    port: env.integer("PORT", 8000, 0, 65535),
    // The embedded database is for development, and its signing key is announced: loopback only by default.
    // Not HOSTNAME: Docker and Kubernetes set that to the container's name, which is no address to listen on.
    hostname: env.text("LISTEN_HOST") ?? (databaseUrl === undefined ? "127.0.0.1" : "0.0.0.0"),
    databaseUrl,
    sslMode,
    signingKeys,
    parentSigningKeys: env.keys("MAILGUN_PARENT_WEBHOOK_SIGNING_KEY"),
    signatureMaxAgeSeconds: env.integer(
      "SIGNATURE_MAX_AGE_SECONDS",
      DEFAULT_SIGNATURE_MAX_AGE_SECONDS,
      60,
      SIGNATURE_MAX_AGE_SECONDS_LIMIT,
    ),
    signatureMaxFutureSeconds: env.integer(
      "SIGNATURE_MAX_FUTURE_SECONDS",
      DEFAULT_SIGNATURE_MAX_FUTURE_SECONDS,
      0,
      SIGNATURE_MAX_FUTURE_SECONDS_LIMIT,
    ),
    bodyLimitBytes: env.integer("BODY_LIMIT_BYTES", DEFAULT_BODY_LIMIT_BYTES, 1024, 64 * 1024 * 1024),
    bodyTimeoutMs: env.integer("BODY_TIMEOUT_MS", DEFAULT_BODY_TIMEOUT_MS, 100, 600_000),
    dbConnectTimeoutMs: env.integer("DB_CONNECT_TIMEOUT_MS", DEFAULT_DB_CONNECT_TIMEOUT_MS, 100, 60_000),
    dbQueryTimeoutMs: env.integer("DB_QUERY_TIMEOUT_MS", DEFAULT_DB_QUERY_TIMEOUT_MS, 100, 60_000),
    dbLockTimeoutMs: env.integer("DB_LOCK_TIMEOUT_MS", DEFAULT_DB_LOCK_TIMEOUT_MS, 10, 60_000),
    webhookDeadlineMs: env.integer("WEBHOOK_DEADLINE_MS", DEFAULT_WEBHOOK_DEADLINE_MS, 100, 60_000),
    dbPoolMax: env.integer("DB_POOL_MAX", DEFAULT_DB_POOL_MAX, 1, 1000),
    dbPrepare: env.boolean("DB_PREPARE", true),
    batchMax: env.integer("BATCH_MAX", DEFAULT_BATCH_MAX, 1, 10_000),
    batchInFlight: env.integer("BATCH_IN_FLIGHT", DEFAULT_BATCH_IN_FLIGHT, 1, 1000),
    batchQueueMax: env.integer("BATCH_QUEUE_MAX", DEFAULT_BATCH_QUEUE_MAX, 1, 1_000_000),
    tokenPruneFirstDelayMs: env.integer(
      "TOKEN_PRUNE_FIRST_DELAY_MS",
      DEFAULT_TOKEN_PRUNE_FIRST_DELAY_MS,
      0,
      24 * 60 * 60 * 1000,
    ),
  };
}
