import type { Sql } from "postgres";
import { boundStatements } from "./bounded_statements.ts";
import { connectPostgres } from "./connect_postgres.ts";
import { DatabaseTimeoutError } from "./database_errors.ts";
import { databaseHost } from "./database_host.ts";
import { explainTlsRefusal } from "./tls_refusal.ts";
import { withTimeout } from "./with_timeout.ts";

/** Bound on a tool's connect: TCP, TLS, PostgreSQL's start-up, and the first answer. */
export const TOOL_CONNECT_TIMEOUT_MS = 10_000;
/** Bound on each statement of a tool (migrations' concurrent index builds excepted). */
export const TOOL_STATEMENT_TIMEOUT_MS = 60_000;

/** A tool's pool on DATABASE_URL, connected, with every statement bounded. */
export interface ToolConnection {
  sql: Sql;
  /** `host:port`, never the password. */
  host: string;
  /** Closes the pool, at most a few seconds even on a database that went silent. */
  close(): Promise<void>;
}

/**
 * Connects a tool (migrate, sql, erase, reconcile) to `url` and checks that
 * the database answers within {@link TOOL_CONNECT_TIMEOUT_MS}: postgres.js's
 * own connect_timeout covers the connect, but a failure of its own kind
 * (DNS, TLS, a reconnect) could outlast it; this bound holds whatever the
 * cause. Throws an error naming `host:port` (and the bound, on a timeout).
 */
export async function connectTool(
  url: string,
  options: { max: number; prepare: boolean; sslMode?: string },
): Promise<ToolConnection> {
  const host = databaseHost(url);
  const pool = connectPostgres(url, { ...options, connectTimeoutMs: TOOL_CONNECT_TIMEOUT_MS });
  try {
    await withTimeout(pool`select 1`, TOOL_CONNECT_TIMEOUT_MS, () => connectTimeout(host));
  } catch (error) {
    // Nothing to finish on a pool that never connected.
    await closeWithin(pool, 500);
    throw toolConnectError(error, host, await explainTlsRefusal(error, host));
  }
  return {
    sql: boundStatements(pool, { timeoutMs: TOOL_STATEMENT_TIMEOUT_MS, host }),
    host,
    close: () => closeWithin(pool, 3_000),
  };
}

/** What a failure to connect says: the host, and the bound when it was one, or why TLS failed. */
function toolConnectError(error: unknown, host: string, tlsRefusal: string | undefined): Error {
  if (error instanceof DatabaseTimeoutError) return error;
  const code = (error as { code?: unknown })?.code;
  if (code === "CONNECT_TIMEOUT") return connectTimeout(host);
  if (tlsRefusal !== undefined) return new Error(tlsRefusal, { cause: error });
  return new Error(`Could not connect to the database at ${host}: ${(error as Error)?.message ?? error}`, {
    cause: error,
  });
}

function connectTimeout(host: string): DatabaseTimeoutError {
  return new DatabaseTimeoutError(host, TOOL_CONNECT_TIMEOUT_MS, "the connect");
}

/** `sql.end`, bounded: on a silent database it could wait for a connect in progress. */
async function closeWithin(sql: Sql, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    sql.end({ timeout: Math.max(0, Math.floor(ms / 1000) - 1) }).catch(() => {}),
    new Promise((resolve) => (timer = setTimeout(resolve, ms))),
  ]);
  clearTimeout(timer);
}
