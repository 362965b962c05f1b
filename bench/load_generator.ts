/**
 * A small wrk-like load generator, run as its own process: keep-alive
 * HTTP/1.1 connections over raw TCP, each sending pre-built requests one
 * after another and timing each. Cheap per request, so that on a 2-core
 * machine most of the CPU is left to the service and the database.
 *
 * Input (argv[0], JSON): { url, bodiesFile, connections, durationMs, cycle?, rate? }.
 * bodiesFile holds one JSON body per line, each signed with its own token;
 * with `cycle` the bodies are sent again from the first once all are sent
 * (for a server that does not spend tokens).
 * With `rate` (requests per second) the load is open: request k is due at
 * k / rate seconds, and its latency counts from when it was due, not from
 * when a connection was free to send it, so that a server that falls behind
 * shows its backlog (no coordinated omission). `connections` must then be
 * enough to hold every request in flight.
 * Output (stdout, JSON): requests, non2xx, errors, seconds, latency percentiles (ms).
 */

interface Options {
  url: string;
  bodiesFile: string;
  connections: number;
  durationMs: number;
  cycle?: boolean;
  rate?: number;
}

const options = JSON.parse(Deno.args[0]) as Options;
const target = new URL(options.url);
const encoder = new TextEncoder();
const requests = (await Deno.readTextFile(options.bodiesFile)).split("\n").filter((line) => line !== "").map((body) => {
  const bytes = encoder.encode(body);
  const head = encoder.encode(
    `POST ${target.pathname} HTTP/1.1\r\nhost: ${target.host}\r\ncontent-type: application/json\r\n` +
      `content-length: ${bytes.byteLength}\r\n\r\n`,
  );
  const request = new Uint8Array(head.byteLength + bytes.byteLength);
  request.set(head);
  request.set(bytes, head.byteLength);
  return request;
});

const latencies: number[] = [];
let next = 0;
let non2xx = 0;
let errors = 0;
const statuses: Record<number, number> = {};
const started = performance.now();
const deadline = started + options.durationMs;

function more(): boolean {
  return performance.now() < deadline && (options.cycle || next < requests.length);
}

/**
 * One sender: requests one after another on a keep-alive connection, opened
 * when its first request is due (so that thousands of senders do not all
 * connect at the start) and again after the server closes it (as a server
 * that sheds load may, without reading the body), as Mailgun would open
 * another; each cut request counts as an error.
 */
async function sender(): Promise<void> {
  let conn: Deno.TcpConn | undefined;
  const buffer = new Uint8Array(64 * 1024);
  let filled = 0;
  while (more()) {
    const k = next++;
    const request = requests[k % requests.length];
    let sent = performance.now();
    if (options.rate) {
      const due = started + (k * 1000) / options.rate;
      if (due >= deadline) break;
      if (due > sent + 1) await new Promise((resolve) => setTimeout(resolve, due - sent));
      sent = due;
    }
    try {
      if (conn === undefined) {
        conn = await Deno.connect({ hostname: target.hostname, port: Number(target.port) });
        conn.setNoDelay(true);
        filled = 0;
      }
      for (let written = 0; written < request.byteLength;) {
        written += await conn.write(request.subarray(written));
      }
      // Read one response: status line and headers, then content-length bytes.
      let status = 0;
      while (true) {
        const headerEnd = indexOfHeaderEnd(buffer, filled);
        if (headerEnd >= 0) {
          const head = new TextDecoder().decode(buffer.subarray(0, headerEnd));
          status = Number(head.slice(9, 12));
          const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
          const total = headerEnd + 4 + length;
          while (filled < total) filled += await readInto(conn, buffer, filled);
          buffer.copyWithin(0, total, filled);
          filled -= total;
          break;
        }
        filled += await readInto(conn, buffer, filled);
      }
      latencies.push(performance.now() - sent);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status < 200 || status > 299) non2xx++;
    } catch {
      errors++;
      conn?.close();
      conn = undefined;
      // A server that refuses connections is not hammered in a tight loop.
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  conn?.close();
}

async function readInto(conn: Deno.Conn, buffer: Uint8Array, offset: number): Promise<number> {
  const n = await conn.read(buffer.subarray(offset));
  if (n === null) throw new Error("Connection closed by the server.");
  return n;
}

function indexOfHeaderEnd(buffer: Uint8Array, length: number): number {
  for (let i = 0; i + 3 < length; i++) {
    if (buffer[i] === 13 && buffer[i + 1] === 10 && buffer[i + 2] === 13 && buffer[i + 3] === 10) return i;
  }
  return -1;
}

await Promise.all(Array.from({ length: options.connections }, sender));
const seconds = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const percentile = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
console.log(JSON.stringify({
  requests: latencies.length,
  non2xx,
  errors,
  statuses,
  seconds,
  rps: latencies.length / seconds,
  p50: percentile(0.5),
  p99: percentile(0.99),
  p999: percentile(0.999),
  max: latencies.at(-1) ?? 0,
  ranOut: !options.cycle && next >= requests.length,
}));
