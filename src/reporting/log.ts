/** A log line's severity. */
export type LogLevel = "info" | "warn" | "error";

type Writer = (line: string, level: LogLevel) => void;

/**
 * Through `console`, not `Deno.stdout`: Deno Deploy collects only `console.*`
 * output, and Deno's OpenTelemetry exports each call as one log record (linked
 * to the request's trace), with the severity of the method called:
 * `console.log` INFO, `console.warn` WARN, `console.error` ERROR. Deno writes
 * the last two to stderr, so info lines are on stdout and warn and error
 * lines on stderr, each stream in the order written; every line carries its
 * `time` and `level`, to merge the two by.
 */
function writeConsole(line: string, level: LogLevel): void {
  try {
    if (level === "error") console.error(line);
    else if (level === "warn") console.warn(line);
    else console.log(line);
  } catch {
    // A broken stdout (a closed pipe) must never stop the service: the line is lost, the webhook is not.
  }
}

let writer: Writer = writeConsole;

/**
 * Writes one structured JSON log line (info on stdout, warn and error on
 * stderr, by default). Callers pass no secrets and no recipient addresses.
 */
export function log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  writer(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }), level);
}

/**
 * Writes a line whose record the caller built whole, `time`, `level` and `msg`
 * first as {@link log} writes them: the webhook's line (one per request) is then
 * serialised from one object literal, without copying its fields into another.
 */
export function logRecord(
  level: LogLevel,
  record: { time: string; level: LogLevel; msg: string; [field: string]: unknown },
): void {
  writer(JSON.stringify(record), level);
}

/** Sends log lines elsewhere (tests read them); returns the previous writer. */
export function setLogWriter(next: Writer): Writer {
  const previous = writer;
  writer = next;
  return previous;
}
