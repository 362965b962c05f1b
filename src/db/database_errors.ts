import { classifyError } from "./classify_error.ts";

/**
 * How the database can fail a write, each keeping the error that caused it
 * (`cause`: the PostgreSQL or driver error, with its SQLSTATE in `code`).
 */

/** The database could not do the work now (down, timed out, failed otherwise); nothing was written. */
export class DatabaseUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DatabaseUnavailableError";
  }
}

/** A row the write must update stayed locked by another session past the lock timeout; nothing was written. */
export class LockTimeoutError extends DatabaseUnavailableError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LockTimeoutError";
  }
}

/**
 * The database refused the event's data (SQLSTATE class 22 or 54, e.g. a
 * character the database's encoding cannot hold): retrying cannot help.
 */
export class DataRefusedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DataRefusedError";
  }
}

/**
 * The API's schema (or our own statement) refused a value the service writes:
 * a status longer than the column, a CHECK, an enum without the label, a NOT
 * NULL, a foreign key (SQLSTATE 22001, 23514, 22P02, 23502, 23503, ...). The
 * event is fine and nothing was written (its token is not spent): answered 503,
 * so that Mailgun retries until the schema is fixed.
 */
export class HostSchemaRefusedError extends Error {
  /** The table, column and constraint the database named, when it did. */
  readonly table?: string;
  readonly column?: string;
  readonly constraint?: string;
  /** What to change, for the operator. */
  readonly fix: string;
  constructor(
    message: string,
    options: ErrorOptions & { table?: string; column?: string; constraint?: string; fix: string },
  ) {
    super(message, options);
    this.name = "HostSchemaRefusedError";
    this.table = options.table;
    this.column = options.column;
    this.constraint = options.constraint;
    this.fix = options.fix;
  }
}

/** What the database names of an error: postgres.js copies the server's fields onto it. */
interface ServerErrorFields {
  code?: unknown;
  table_name?: unknown;
  column_name?: unknown;
  constraint_name?: unknown;
}

/** A {@link HostSchemaRefusedError} for a statement the schema refused, naming what the database named. */
export function toHostSchemaRefusedError(error: unknown): HostSchemaRefusedError {
  const fields = error as ServerErrorFields;
  const name = (value: unknown) => typeof value === "string" && value !== "" ? value : undefined;
  const table = name(fields?.table_name);
  const column = name(fields?.column_name);
  const constraint = name(fields?.constraint_name);
  const where = [
    table && `table ${table}`,
    column && `column ${column}`,
    constraint && `constraint ${constraint}`,
  ].filter(Boolean).join(", ");
  return new HostSchemaRefusedError(
    `The database schema refused a value the service writes (${fields?.code}${
      where ? `: ${where}` : ""
    }); retry later.`,
    { cause: error, table, column, constraint, fix: schemaFix(String(fields?.code), table, column, constraint) },
  );
}

/** What to change for a refusal, from what the database named. */
function schemaFix(code: string, table?: string, column?: string, constraint?: string): string {
  const statuses = "DELIVERED, FAILED and COMPLAINED";
  const on = table ? ` of table ${table}` : "";
  switch (code) {
    case "22001":
      return "A status is longer than its column allows: make documents.email_status and tenants.email_status " +
        "varchar(10) or longer, or text (COMPLAINED has 10 characters).";
    case "23514":
      return `Constraint ${constraint ?? "(unnamed)"}${on} refuses a status: let it accept ${statuses}.`;
    case "22P02":
      return `A column refuses a status as input (an enum without the label?): e.g. alter type <its enum> ` +
        `add value 'COMPLAINED'; it must accept ${statuses}.`;
    case "23502":
      return `Column ${column ?? "(unnamed)"}${on} refuses a null the service writes: let it take null or a default.`;
    case "23503":
      return `Foreign key ${constraint ?? "(unnamed)"}${on}: the table it references must hold ${statuses}.`;
    default:
      return "Run deno task migrate: it lists what the host schema refuses.";
  }
}

/**
 * What a failed statement means for the write: a lock timeout, or an
 * unavailable database, keeping the driver's error as `cause`. An error with
 * no SQLSTATE or driver code is not the database's: a bug, returned as it is,
 * to be reported with its stack.
 */
export function toDatabaseError(error: unknown): unknown {
  if (
    error instanceof DatabaseUnavailableError || error instanceof DataRefusedError ||
    error instanceof HostSchemaRefusedError
  ) return error;
  if (typeof (error as { code?: unknown })?.code !== "string") return error;
  const kind = classifyError(error);
  if (kind === "schema") return toHostSchemaRefusedError(error);
  if (kind === "lock") {
    return new LockTimeoutError("A row this write updates stayed locked by another session; retry later.", {
      cause: error,
    });
  }
  return new DatabaseUnavailableError("Database is unavailable; retry later.", { cause: error });
}

/**
 * The database did not answer within a bound the caller set (a connect, or
 * one statement): down, unreachable, or a network that drops packets.
 */
export class DatabaseTimeoutError extends DatabaseUnavailableError {
  /** `host:port` of the database (never a password). */
  readonly host: string;
  readonly timeoutMs: number;
  constructor(host: string, timeoutMs: number, what: string) {
    super(`The database at ${host} did not answer ${what} within ${formatSeconds(timeoutMs)}.`);
    this.name = "DatabaseTimeoutError";
    this.host = host;
    this.timeoutMs = timeoutMs;
  }
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
