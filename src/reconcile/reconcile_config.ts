import { ConfigError, type EnvSource, readEnv, wholeNumber } from "../config/read_env.ts";
import type { BackoffOptions } from "./fetch_with_backoff.ts";
import { MAILGUN_API_BASE_URLS } from "./mailgun_event_source.ts";

/** Rows younger than this are left to the webhook: Mailgun delivers most events within minutes. */
const DEFAULT_MIN_AGE = "1h";
/** Rows older than this are not asked about: Mailgun keeps events for 30 days on paid plans (less on free ones). */
const DEFAULT_MAX_AGE = "30d";
/** Most rows held and matched in one run: a few MB of memory. */
const DEFAULT_LIMIT = 10_000;

/** Which of Mailgun's read APIs reconcile uses. */
type ReconcileApi = "logs" | "events";

/** What `deno task reconcile` needs. */
export interface ReconcileConfig {
  apiKey: string;
  domain: string;
  /** `logs` (Mailgun's Logs API, the default) or `events` (its deprecated Events API). */
  api: ReconcileApi;
  baseUrl: string;
  minAgeMs: number;
  maxAgeMs: number;
  limit: number;
  backoff: Omit<BackoffOptions, "onRetry">;
}

/**
 * Reads the reconcile settings: MAILGUN_API_KEY, MAILGUN_DOMAIN and
 * MAILGUN_REGION (`us` or `eu`), MAILGUN_API_BASE_URL (overrides the region),
 * the API (`--api logs|events`, or RECONCILE_API), and the age window and
 * limit, from flags (`--min-age 2h`) or RECONCILE_* variables. Throws a {@link ConfigError} naming the first bad setting.
 */
export function loadReconcileConfig(
  flags: { minAge?: string; maxAge?: string; limit?: string; api?: string } = {},
  source?: EnvSource,
): ReconcileConfig {
  const env = readEnv(source);
  const get = env.text;
  const apiKey = get("MAILGUN_API_KEY");
  if (apiKey === undefined) {
    throw new ConfigError(
      "MAILGUN_API_KEY is required (Mailgun > API security > a private API key; not the webhook signing key).",
    );
  }
  const domain = get("MAILGUN_DOMAIN");
  if (domain === undefined || !/^[a-z0-9.-]+$/i.test(domain)) {
    throw new ConfigError(`MAILGUN_DOMAIN must be your sending domain, e.g. mg.example.com (got "${domain ?? ""}").`);
  }
  const region = (get("MAILGUN_REGION") ?? "us").toLowerCase();
  if (region !== "us" && region !== "eu") {
    throw new ConfigError(`MAILGUN_REGION must be us or eu (got "${region}").`);
  }
  const baseUrl = get("MAILGUN_API_BASE_URL") ?? MAILGUN_API_BASE_URLS[region];
  if (!/^https?:\/\/[^/]+\/?$/.test(baseUrl)) {
    throw new ConfigError(`MAILGUN_API_BASE_URL must be a scheme and host, e.g. https://api.mailgun.net.`);
  }
  const api = (flags.api ?? get("RECONCILE_API") ?? "logs").toLowerCase();
  if (api !== "logs" && api !== "events") {
    throw new ConfigError(`--api must be logs or events (got "${api}").`);
  }
  const minAgeMs = duration("--min-age", flags.minAge ?? get("RECONCILE_MIN_AGE") ?? DEFAULT_MIN_AGE);
  const maxAgeMs = duration("--max-age", flags.maxAge ?? get("RECONCILE_MAX_AGE") ?? DEFAULT_MAX_AGE);
  if (maxAgeMs <= minAgeMs) throw new ConfigError("--max-age must be longer than --min-age.");
  return {
    apiKey,
    domain,
    api,
    baseUrl,
    minAgeMs,
    maxAgeMs,
    limit: wholeNumber("--limit", flags.limit ?? get("RECONCILE_LIMIT"), DEFAULT_LIMIT, 1, 1_000_000),
    backoff: {
      maxAttempts: env.integer("RECONCILE_MAX_ATTEMPTS", 6, 1, 20),
      baseDelayMs: env.integer("RECONCILE_BACKOFF_MS", 1_000, 0, 60_000),
      maxDelayMs: env.integer("RECONCILE_MAX_BACKOFF_MS", 60_000, 0, 600_000),
      timeoutMs: env.integer("RECONCILE_REQUEST_TIMEOUT_MS", 30_000, 100, 300_000),
    },
  };
}

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `30m`, `2h`, `7d` or `0`, as milliseconds. */
export function duration(name: string, raw: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(raw.trim());
  if (match === null || (match[2] === "" && match[1] !== "0")) {
    throw new ConfigError(`${name} must be a duration like 30m, 2h or 7d (got "${raw}").`);
  }
  return Number(match[1]) * (UNITS[match[2]] ?? 0);
}

/** How often the service reconciles on its own (Deno.cron): RECONCILE_SCHEDULE. */
export type ReconcileSchedule = "hourly" | "daily" | "off";

/** Whether, and how, the service reconciles on its own schedule; `off` says why. */
export type ScheduledReconcile =
  | { schedule: "off"; reason: string }
  | { schedule: "hourly" | "daily"; config: ReconcileConfig };

/**
 * The scheduled reconcile is opt-in: on when MAILGUN_API_KEY and
 * MAILGUN_DOMAIN are set, unless RECONCILE_SCHEDULE is `off`; `daily` (the
 * default: each run may read up to RECONCILE_MAX_AGE of Mailgun's log) or
 * `hourly`. The rest as for `deno task reconcile` (RECONCILE_* variables).
 * Throws a {@link ConfigError} naming a bad setting.
 */
export function loadScheduledReconcile(source?: EnvSource): ScheduledReconcile {
  const env = readEnv(source);
  const schedule = (env.text("RECONCILE_SCHEDULE") ?? "daily").toLowerCase();
  if (schedule !== "hourly" && schedule !== "daily" && schedule !== "off") {
    throw new ConfigError(`RECONCILE_SCHEDULE must be daily, hourly or off (got "${schedule}").`);
  }
  if (schedule === "off") return { schedule, reason: "RECONCILE_SCHEDULE is off" };
  if (env.text("MAILGUN_API_KEY") === undefined && env.text("MAILGUN_DOMAIN") === undefined) {
    return { schedule: "off", reason: "MAILGUN_API_KEY and MAILGUN_DOMAIN are not set" };
  }
  return { schedule, config: loadReconcileConfig({}, source) };
}
