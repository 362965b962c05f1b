type Writer = (line: string) => void;

let writer: Writer = (line) => console.log(line);

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
