/** How a failed statement should be handled. */
type ErrorKind =
  /** Lost the connection or the server went away: retry on a fresh connection. */
  | "connection"
  /** Deadlock, serialization failure, or a row that vanished meanwhile: retry at once. */
  | "conflict"
  /** The event itself cannot be stored (its characters, its size): retrying the same input cannot help. */
  | "data"
  /**
   * The API's schema (a narrow column, a CHECK, an enum, a foreign key) or our own
   * statement refused a value: nothing is wrong with the event, and a retry can
   * succeed once the schema is fixed.
   */
  | "schema"
  /** A row or table stayed locked by another session past lock_timeout (55P03). */
  | "lock"
  /** Anything else. */
  | "other";

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01", // admin_shutdown (pg_terminate_backend)
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
]);

/**
 * What says the event itself cannot be stored: characters the database's
 * encoding cannot hold; anything of class 54 (program limit: its size, its depth).
 */
const EVENT_DATA_CODES = new Set([
  "22P05", // untranslatable_character
  "22021", // character_not_in_repertoire
]);

/** Classifies an error thrown by postgres.js. */
export function classifyError(error: unknown): ErrorKind {
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== "string") return "other";
  if (CONNECTION_CODES.has(code) || code.startsWith("08")) return "connection";
  if (code === "40001" || code === "40P01") return "conflict";
  if (EVENT_DATA_CODES.has(code) || code.startsWith("54")) return "data";
  // 22001 too long, 22P02 not a label of an enum, 23514 check, 23502 not null, 23503 foreign key, ...:
  // the statement writes only values the service chose (statuses, ids), so the schema refused them.
  if (code.startsWith("22") || code.startsWith("23")) return "schema";
  if (code === "55P03") return "lock";
  return "other";
}
