import type { PendingQuery, ReservedSql, Row, Sql } from "postgres";
import { DatabaseTimeoutError } from "./database_errors.ts";
import { withTimeout } from "./with_timeout.ts";

/** How the statements of a connection (or pool) are bounded and watched. */
export interface StatementBounds {
  /** Bound on each statement: past it the statement is cancelled and fails with a DatabaseTimeoutError. */
  timeoutMs: number;
  /** `host:port`, for the error's message. */
  host: string;
  /** Statements that may run longer (a concurrent index build): no bound, but watched. */
  unbounded?: (text: string) => boolean;
  /**
   * Told of a statement still running after a second, then every `watchEveryMs`;
   * may return what it waits for, which a lock timeout's error then names.
   */
  onSlow?: (text: string, elapsedMs: number) => Promise<string | undefined>;
  /** Default 10 s. */
  watchEveryMs?: number;
  /**
   * One session (a reserved connection): once a statement timed out, its
   * state is unknown and the rest fail at once with the same error (a
   * rollback on a silent network would wait out the bound again).
   */
  oneSession?: boolean;
}

/**
 * `sql` (a pool or a reserved connection) with every statement it runs
 * bounded: a client-side bound, which holds where a server-side
 * `statement_timeout` cannot (a network that drops packets, a server that
 * accepted the connection and went silent). `sql\`...\`` and `sql.unsafe(...)`
 * return a promise with the query's `cancel()`; everything else (helpers,
 * `begin`, `reserve`, `end`) is the original's.
 */
export function boundStatements<T extends Sql | ReservedSql>(sql: T, bounds: StatementBounds): T {
  let timedOut: DatabaseTimeoutError | undefined;
  const bound = (query: PendingQuery<Row[]>, text: string) => {
    if (timedOut !== undefined) return Object.assign(Promise.reject(timedOut), { cancel: () => {} });
    const result = watched(query, text, bounds);
    if (bounds.oneSession) {
      result.catch((error) => {
        if (error instanceof DatabaseTimeoutError) timedOut = error;
      });
    }
    return result;
  };
  return new Proxy(sql, {
    apply(target, thisArg, args) {
      const result = Reflect.apply(target as unknown as (...a: unknown[]) => unknown, thisArg, args);
      // sql`...` is a statement; sql("name") or sql(rows) is a helper for one, left alone.
      const strings = args[0];
      return Array.isArray(strings) && "raw" in strings
        ? bound(result as PendingQuery<Row[]>, strings.join("$"))
        : result;
    },
    get(target, property) {
      if (property === "unsafe") {
        return (text: string, ...rest: unknown[]) =>
          bound((target.unsafe as (...a: unknown[]) => PendingQuery<Row[]>)(text, ...rest), text);
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function watched(query: PendingQuery<Row[]>, text: string, bounds: StatementBounds): Promise<Row[]> & {
  cancel(): void;
} {
  const started = performance.now();
  let waitingFor: string | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (bounds.onSlow !== undefined) {
    const onSlow = bounds.onSlow;
    const watch = () => {
      timer = setTimeout(async () => {
        waitingFor = await onSlow(text, performance.now() - started).catch(() => undefined) ?? waitingFor;
        if (timer !== undefined) watch();
      }, timer === undefined ? 1_000 : bounds.watchEveryMs ?? 10_000);
    };
    watch();
  }
  const run = bounds.unbounded?.(text) ? Promise.resolve(query) : withTimeout(
    query,
    bounds.timeoutMs,
    () => new DatabaseTimeoutError(bounds.host, bounds.timeoutMs, "a statement"),
  );
  const result = run.then(
    (rows) => rows,
    (error) => {
      // 55P03 lock_not_available: PostgreSQL does not say which lock; the watch may have seen it.
      if ((error as { code?: unknown })?.code === "55P03" && waitingFor !== undefined) {
        throw Object.assign(new Error(`${(error as Error).message} (it waited for ${waitingFor})`, { cause: error }), {
          code: "55P03",
        });
      }
      throw error;
    },
  ).finally(() => {
    clearTimeout(timer);
    timer = undefined;
  });
  return Object.assign(result, { cancel: () => query.cancel() });
}
