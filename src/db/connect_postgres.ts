import postgres, { type Sql } from "postgres";

/** Pool settings. */
export interface PostgresOptions {
  max: number;
  connectTimeoutMs: number;
  /** False behind a transaction-mode pooler, which cannot keep prepared statements. */
  prepare: boolean;
}

/** A postgres.js pool for `url`, with bounded connects and no notice noise on stdout. */
export function connectPostgres(url: string, options: PostgresOptions): Sql {
  return postgres(url, {
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
