import postgres, { type Sql } from "postgres";

/** Pool settings. */
interface PostgresOptions {
  max: number;
  connectTimeoutMs: number;
  /** False behind a transaction-mode pooler, which cannot keep prepared statements. */
  prepare: boolean;
  /** PGSSLMODE (see {@link sslFallback}). */
  sslMode?: string;
}

/**
 * The TLS mode when `url` names none: `mode`, libpq's `PGSSLMODE`, which Deno
 * Deploy sets for linked databases but postgres.js does not read (it reads
 * `PGSSL`). An `sslmode` in the URL wins, and postgres.js reads it itself:
 * `require` demands TLS (a server without it is refused, never used in plain
 * text), `verify-full` also checks the certificate, `disable` turns TLS off.
 */
export function sslFallback(url: string, mode: string | undefined): { ssl?: SslMode | false } {
  let params: URLSearchParams;
  try {
    params = new URL(url).searchParams;
  } catch {
    return {};
  }
  if (params.has("sslmode") || params.has("ssl")) return {};
  if (!mode) return {};
  if (mode === "disable") return { ssl: false };
  // postgres.js has no verify-ca: verify-full checks more (the host name too), never less.
  if (mode === "verify-ca") return { ssl: "verify-full" };
  return SSL_MODES.includes(mode as SslMode) ? { ssl: mode as SslMode } : {};
}

type SslMode = "require" | "allow" | "prefer" | "verify-full";
const SSL_MODES: SslMode[] = ["require", "allow", "prefer", "verify-full"];

/** A postgres.js pool for `url`, with bounded connects and no notice noise on stdout. */
export function connectPostgres(url: string, options: PostgresOptions): Sql {
  return postgres(url, {
    ...sslFallback(url, options.sslMode),
    max: options.max,
    prepare: options.prepare,
    connect_timeout: Math.max(1, Math.ceil(options.connectTimeoutMs / 1000)),
    idle_timeout: 60,
    max_lifetime: 30 * 60,
    onnotice: () => {},
    connection: {
      application_name: "comprobify-mailgun-webhook",
      // Sent only on connections that keep prepared statements (transaction-mode poolers refuse
      // startup parameters). The webhook statement's custom plans cost more to make (about 1 ms)
      // than to run: always reuse the generic plan (PostgreSQL 12+). JIT never pays for a
      // statement of a few rows, and compiling it took 0.7-1.3 s where statistics were missing.
      ...(options.prepare ? { plan_cache_mode: "force_generic_plan", jit: "off" } : {}),
    },
  });
}
