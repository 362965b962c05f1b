type Writer = (line: string) => void;

const encoder = new TextEncoder();
let pending: string[] = [];

/**
 * Lines written in one turn of the event loop go out in one write: a batch of
 * webhooks answered together costs one system call, not one per line.
 */
function writeStdout(line: string): void {
  pending.push(line);
  if (pending.length === 1) queueMicrotask(flush);
}

/** Writes out the lines not yet written; call before `Deno.exit`. */
export function flushLog(): void {
  if (pending.length > 0) flush();
}

function flush(): void {
  if (pending.length === 0) return;
  const text = pending.join("\n") + "\n";
  pending = [];
  const bytes = encoder.encode(text);
  for (let written = 0; written < bytes.length;) written += Deno.stdout.writeSync(bytes.subarray(written));
}

let writer: Writer = writeStdout;

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
