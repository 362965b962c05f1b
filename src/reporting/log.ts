type Writer = (line: string) => void;

/**
 * Through `console`, not `Deno.stdout`: Deno Deploy collects only `console.*`
 * output, and Deno's OpenTelemetry exports each call as one log record (linked
 * to the request's trace). Every level goes to stdout with `console.log`, so
 * that one stream keeps the lines in order; the level is in the line itself.
 */
function writeConsole(line: string): void {
  try {
    console.log(line);
  } catch {
    // A broken stdout (a closed pipe) must never stop the service: the line is lost, the webhook is not.
  }
}

let writer: Writer = writeConsole;

/** Writes one structured JSON log line (stdout by default). Callers pass no secrets and no recipient addresses. */
export function log(level: "info" | "warn" | "error", msg: string, fields: Record<string, unknown> = {}): void {
  writer(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }));
}

/** Sends log lines elsewhere (tests read them); returns the previous writer. */
export function setLogWriter(next: Writer): Writer {
  const previous = writer;
  writer = next;
  return previous;
}
