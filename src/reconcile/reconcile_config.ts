import { z } from "zod";
import { choiceVariable, textVariable, wholeNumberVariable } from "../config/env_variables.ts";
import { ConfigError, type EnvSource, readEnv, readSetting } from "../config/read_env.ts";
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
  /** RECONCILE_RESCAN: a new value asks the next run for one full rescan of the age window. */
  rescanLabel?: string;
  backoff: Omit<BackoffOptions, "onRetry">;
}

function domainProblem(issue: { input?: unknown }): string {
  return `must be your sending domain, e.g. mg.example.com (got "${String(issue.input ?? "")}").`;
}

/** The variables reconcile reads; the age window, limit and API may come from flags instead. */
const reconcileVariables = z.object({
  MAILGUN_API_KEY: z.string({
    error: "is required (Mailgun > API security > a private API key; not the webhook signing key).",
  }),
  MAILGUN_DOMAIN: z.string({ error: domainProblem }).regex(/^[a-z0-9.-]+$/i, { error: domainProblem }),
  MAILGUN_REGION: choiceVariable(["us", "eu"]),
  MAILGUN_API_BASE_URL: z.string().regex(/^https?:\/\/[^/]+\/?$/, {
    error: "must be a scheme and host, e.g. https://api.mailgun.net.",
  }).optional(),
  RECONCILE_API: textVariable(),
  RECONCILE_MIN_AGE: textVariable(),
  RECONCILE_MAX_AGE: textVariable(),
  RECONCILE_LIMIT: textVariable(),
  RECONCILE_RESCAN: textVariable(),
  RECONCILE_MAX_ATTEMPTS: wholeNumberVariable(6, 1, 20),
  RECONCILE_BACKOFF_MS: wholeNumberVariable(1_000, 0, 60_000),
  RECONCILE_MAX_BACKOFF_MS: wholeNumberVariable(60_000, 0, 600_000),
  RECONCILE_REQUEST_TIMEOUT_MS: wholeNumberVariable(30_000, 100, 300_000),
});

/** `logs` or `events`, in any case. */
const apiSetting = z.string().transform((raw) => raw.toLowerCase()).pipe(
  z.enum(["logs", "events"], { error: (issue) => `must be logs or events (got "${String(issue.input)}").` }),
);

/**
 * Reads the reconcile settings: MAILGUN_API_KEY, MAILGUN_DOMAIN and
 * MAILGUN_REGION (`us` or `eu`), MAILGUN_API_BASE_URL (overrides the region),
 * the API (`--api logs|events`, or RECONCILE_API), and the age window and
 * limit, from flags (`--min-age 2h`) or RECONCILE_* variables, and
 * RECONCILE_RESCAN (any label: a new one asks for one full rescan). Throws a
 * {@link ConfigError} naming the first bad setting.
 */
export function loadReconcileConfig(
  flags: { minAge?: string; maxAge?: string; limit?: string; api?: string } = {},
  source?: EnvSource,
): ReconcileConfig {
  const env = readEnv(reconcileVariables, source);
  const api: ReconcileApi = readSetting("--api", apiSetting, flags.api ?? env.RECONCILE_API ?? "logs");
  const minAgeMs = duration("--min-age", flags.minAge ?? env.RECONCILE_MIN_AGE ?? DEFAULT_MIN_AGE);
  const maxAgeMs = duration("--max-age", flags.maxAge ?? env.RECONCILE_MAX_AGE ?? DEFAULT_MAX_AGE);
  if (maxAgeMs <= minAgeMs) throw new ConfigError("--max-age must be longer than --min-age.");
  return {
    apiKey: env.MAILGUN_API_KEY,
    domain: env.MAILGUN_DOMAIN,
    api,
    baseUrl: env.MAILGUN_API_BASE_URL ?? MAILGUN_API_BASE_URLS[env.MAILGUN_REGION ?? "us"],
    minAgeMs,
    maxAgeMs,
    limit: readSetting("--limit", wholeNumberVariable(DEFAULT_LIMIT, 1, 1_000_000), flags.limit ?? env.RECONCILE_LIMIT),
    rescanLabel: env.RECONCILE_RESCAN?.trim() || undefined,
    backoff: {
      maxAttempts: env.RECONCILE_MAX_ATTEMPTS,
      baseDelayMs: env.RECONCILE_BACKOFF_MS,
      maxDelayMs: env.RECONCILE_MAX_BACKOFF_MS,
      timeoutMs: env.RECONCILE_REQUEST_TIMEOUT_MS,
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

/** What decides whether the service reconciles on its own; the rest is reconcile's own settings. */
const scheduleVariables = z.object({
  RECONCILE_SCHEDULE: choiceVariable(["daily", "hourly", "off"]),
  MAILGUN_API_KEY: textVariable(),
  MAILGUN_DOMAIN: textVariable(),
});

/**
 * The scheduled reconcile is opt-in: on when MAILGUN_API_KEY and
 * MAILGUN_DOMAIN are set, unless RECONCILE_SCHEDULE is `off`; `daily` (the
 * default: each run may read up to RECONCILE_MAX_AGE of Mailgun's log) or
 * `hourly`. The rest as for `deno task reconcile` (RECONCILE_* variables).
 * Throws a {@link ConfigError} naming a bad setting.
 */
export function loadScheduledReconcile(source?: EnvSource): ScheduledReconcile {
  const env = readEnv(scheduleVariables, source);
  const schedule = env.RECONCILE_SCHEDULE ?? "daily";
  if (schedule === "off") return { schedule, reason: "RECONCILE_SCHEDULE is off" };
  if (env.MAILGUN_API_KEY === undefined && env.MAILGUN_DOMAIN === undefined) {
    return { schedule: "off", reason: "MAILGUN_API_KEY and MAILGUN_DOMAIN are not set" };
  }
  return { schedule, config: loadReconcileConfig({}, source) };
}
