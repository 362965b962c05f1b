/** How a failed statement should be handled. */
type ErrorKind =
  /** Lost the connection or the server went away: retry on a fresh connection. */
  | "connection"
  /** Deadlock, serialization failure, or a row that vanished meanwhile: retry at once. */
  | "conflict"
  /** The input itself cannot be stored: retrying the same input cannot help. */
  | "data"
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

/** Classifies an error thrown by postgres.js. */
export function classifyError(error: unknown): ErrorKind {
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== "string") return "other";
  if (CONNECTION_CODES.has(code) || code.startsWith("08")) return "connection";
  if (code === "40001" || code === "40P01" || code.startsWith("23")) return "conflict";
  if (code.startsWith("22") || code.startsWith("54")) return "data";
  if (code === "55P03") return "lock";
  return "other";
}
