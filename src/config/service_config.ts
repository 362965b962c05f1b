/** The service's configuration: every variable as a zod schema, read from the environment once at start-up. */
import { z } from "zod";
import { databaseVariables } from "./database_settings.ts";
import { booleanVariable, keysVariable, textVariable, wholeNumberVariable } from "./env_variables.ts";
import { type EnvSource, readEnv } from "./read_env.ts";

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
/** Longest wait for a batch to gather as many webhooks as the last one held (see createBatchWriter); 0: none. */
const DEFAULT_BATCH_GATHER_MS = 0;
/**
 * Webhooks waiting for a statement; past it, new ones get 503 at once (Mailgun retries) instead of piling up.
 * Eight statements' worth at the default BATCH_MAX: more than 128 connections ever queue, while an overload holds
 * about 1,000 webhooks in memory, not 10,000 (bench --latency: a webhook waiting costs the service about 55 KB, so
 * 10,000 of them would outgrow a Deno Deploy isolate's memory).
 */
export const DEFAULT_BATCH_QUEUE_MAX = 1_024;
/**
 * A new webhook gets 503 at once when a whole batch (BATCH_MAX) or more
 * waits and the oldest one has waited this long: the instance is behind, and
 * whatever joins the queue now would wait longer still. Fewer than a batch
 * go out together in the next statement, however long a row lock held the
 * one before. Sheds by time, not count, so that an instance holds about
 * this much work whatever its throughput, and its memory stays flat under
 * any overload (issue 22: 2x and 10x the sustainable rate).
 */
export const DEFAULT_BATCH_QUEUE_WAIT_MAX_MS = 1_000;
/** The first token pruning, soon after start: instances on Deno Deploy may not live for a whole interval. */
const DEFAULT_TOKEN_PRUNE_FIRST_DELAY_MS = 30_000;

/**
 * Shortest signing key accepted. Mailgun's HTTP webhook signing keys are 32
 * or more characters (a hex string, or `key-` and 32 characters in older
 * accounts); half that still refuses a typo, a placeholder (`changeme`) or
 * a stray character, while leaving room should Mailgun shorten its format.
 */
const MIN_SIGNING_KEY_LENGTH = 16;

const SIGNING_KEY_HOME = "Mailgun > Sending > Webhooks > HTTP webhook signing key";

/** Every variable the service reads, its default and its bounds, by name (a tool may read some of them). */
export const SERVICE_VARIABLES = {
  ...databaseVariables.shape,
  /** Set by Deno Deploy: there the embedded database cannot work. */
  DENO_DEPLOY: textVariable(),
  DENO_DEPLOYMENT_ID: textVariable(),
  PORT: wholeNumberVariable(8000, 0, 65535),
  /** Not HOSTNAME: Docker and Kubernetes set that to the container's name, which is no address to listen on. */
  LISTEN_HOST: textVariable(),
  MAILGUN_WEBHOOK_SIGNING_KEY: keysVariable(
    MIN_SIGNING_KEY_LENGTH,
    `holds a key shorter than ${MIN_SIGNING_KEY_LENGTH} characters, which cannot be Mailgun's (${SIGNING_KEY_HOME}).`,
  ),
  MAILGUN_PARENT_WEBHOOK_SIGNING_KEY: keysVariable(
    MIN_SIGNING_KEY_LENGTH,
    `holds a key shorter than ${MIN_SIGNING_KEY_LENGTH} characters, which cannot be Mailgun's (the parent account's ${SIGNING_KEY_HOME}).`,
  ),
  SIGNATURE_MAX_AGE_SECONDS: wholeNumberVariable(
    DEFAULT_SIGNATURE_MAX_AGE_SECONDS,
    60,
    SIGNATURE_MAX_AGE_SECONDS_LIMIT,
  ),
  SIGNATURE_MAX_FUTURE_SECONDS: wholeNumberVariable(
    DEFAULT_SIGNATURE_MAX_FUTURE_SECONDS,
    0,
    SIGNATURE_MAX_FUTURE_SECONDS_LIMIT,
  ),
  BODY_LIMIT_BYTES: wholeNumberVariable(DEFAULT_BODY_LIMIT_BYTES, 1024, 64 * 1024 * 1024),
  BODY_TIMEOUT_MS: wholeNumberVariable(DEFAULT_BODY_TIMEOUT_MS, 100, 600_000),
  DB_CONNECT_TIMEOUT_MS: wholeNumberVariable(DEFAULT_DB_CONNECT_TIMEOUT_MS, 100, 60_000),
  DB_QUERY_TIMEOUT_MS: wholeNumberVariable(DEFAULT_DB_QUERY_TIMEOUT_MS, 100, 60_000),
  DB_LOCK_TIMEOUT_MS: wholeNumberVariable(DEFAULT_DB_LOCK_TIMEOUT_MS, 10, 60_000),
  WEBHOOK_DEADLINE_MS: wholeNumberVariable(DEFAULT_WEBHOOK_DEADLINE_MS, 100, 60_000),
  DB_POOL_MAX: wholeNumberVariable(DEFAULT_DB_POOL_MAX, 1, 1000),
  /** False behind a transaction-mode pooler (PgBouncer, Supavisor). */
  DB_PREPARE: booleanVariable(true),
  BATCH_MAX: wholeNumberVariable(DEFAULT_BATCH_MAX, 1, 10_000),
  BATCH_IN_FLIGHT: wholeNumberVariable(DEFAULT_BATCH_IN_FLIGHT, 1, 1000),
  BATCH_GATHER_MS: wholeNumberVariable(DEFAULT_BATCH_GATHER_MS, 0, 100),
  BATCH_QUEUE_MAX: wholeNumberVariable(DEFAULT_BATCH_QUEUE_MAX, 1, 1_000_000),
  BATCH_QUEUE_WAIT_MAX_MS: wholeNumberVariable(DEFAULT_BATCH_QUEUE_WAIT_MAX_MS, 10, 60_000),
  TOKEN_PRUNE_FIRST_DELAY_MS: wholeNumberVariable(DEFAULT_TOKEN_PRUNE_FIRST_DELAY_MS, 0, 24 * 60 * 60 * 1000),
};

/** The service's variables, with the rules that tie them together. */
const serviceVariables = z.object(SERVICE_VARIABLES).superRefine((env, context) => {
  if (env.DATABASE_URL === undefined && (env.DENO_DEPLOY || env.DENO_DEPLOYMENT_ID)) {
    context.addIssue({
      code: "custom",
      path: ["DATABASE_URL"],
      message: "is required on Deno Deploy: the embedded database needs a disk that instances there do not share.",
    });
  }
  if (env.DATABASE_URL !== undefined && env.MAILGUN_WEBHOOK_SIGNING_KEY.length === 0) {
    context.addIssue({
      code: "custom",
      path: ["MAILGUN_WEBHOOK_SIGNING_KEY"],
      message: `is required when DATABASE_URL is set (${SIGNING_KEY_HOME}).`,
    });
  }
});

/** The service's settings. */
export type Config = ReturnType<typeof toConfig>;

/** Reads and checks the configuration; throws a ConfigError naming the first bad variable. */
export function loadConfig(source?: EnvSource): Config {
  return toConfig(readEnv(serviceVariables, source));
}

function toConfig(env: z.output<typeof serviceVariables>) {
  return {
    port: env.PORT,
    /** LISTEN_HOST; the embedded database is for development, and its signing key is announced: loopback only by default. */
    hostname: env.LISTEN_HOST ?? (env.DATABASE_URL === undefined ? "127.0.0.1" : "0.0.0.0"),
    /** Unset: the embedded database. */
    databaseUrl: env.DATABASE_URL,
    /** PGSSLMODE, applied when DATABASE_URL names no TLS mode. */
    sslMode: env.PGSSLMODE,
    /** Empty only with the embedded database (a development key is used). */
    signingKeys: env.MAILGUN_WEBHOOK_SIGNING_KEY,
    parentSigningKeys: env.MAILGUN_PARENT_WEBHOOK_SIGNING_KEY,
    signatureMaxAgeSeconds: env.SIGNATURE_MAX_AGE_SECONDS,
    signatureMaxFutureSeconds: env.SIGNATURE_MAX_FUTURE_SECONDS,
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    bodyTimeoutMs: env.BODY_TIMEOUT_MS,
    dbConnectTimeoutMs: env.DB_CONNECT_TIMEOUT_MS,
    dbQueryTimeoutMs: env.DB_QUERY_TIMEOUT_MS,
    dbLockTimeoutMs: env.DB_LOCK_TIMEOUT_MS,
    webhookDeadlineMs: env.WEBHOOK_DEADLINE_MS,
    dbPoolMax: env.DB_POOL_MAX,
    /** False behind a transaction-mode pooler (PgBouncer, Supavisor). */
    dbPrepare: env.DB_PREPARE,
    batchMax: env.BATCH_MAX,
    batchInFlight: env.BATCH_IN_FLIGHT,
    batchGatherMs: env.BATCH_GATHER_MS,
    batchQueueMax: env.BATCH_QUEUE_MAX,
    batchQueueWaitMaxMs: env.BATCH_QUEUE_WAIT_MAX_MS,
    tokenPruneFirstDelayMs: env.TOKEN_PRUNE_FIRST_DELAY_MS,
  };
}
