/**
 * Hostile and broken clients against the service as a process with exactly
 * the start task's permissions: bodies that trickle in or never end, bodies
 * over the limit without a Content-Length, crowds of idle connections, and
 * the property-based fuzzer of tests/helpers/hostile_input.ts.
 *
 * Needs the real PostgreSQL: DATABASE_URL=postgres://root@127.0.0.1:5432/test deno task faults
 */
import assert from "node:assert/strict";
import { signWebhook } from "../../src/mailgun/sign_webhook.ts";
import { fuzzWebhook } from "../helpers/hostile_input.ts";
import { eventData } from "../helpers/mailgun.ts";
import { newMessageId } from "../helpers/test_service.ts";
import { createFaultDatabase, type FaultDatabase } from "./fault_database.ts";
import { checkLogs, run, type ServerProcess, START_PERMISSIONS, startServerProcess } from "../helpers/subprocess.ts";

/** Short, so that the suite stays quick; the production default is 10 s. */
const BODY_TIMEOUT_MS = 1_000;
/** Generous: the machine may be busy with other tests. */
const MARGIN_MS = 5_000;
/** How much each never-ending body sends at most: far more than the limit and than memory would shrug off. */
const FLOOD_CAP_BYTES = 256 * 1024 * 1024;
const FUZZ_SEED = Number(Deno.env.get("FUZZ_SEED") ?? 20260427);
const FUZZ_RUNS = Number(Deno.env.get("FAULT_FUZZ_RUNS") ?? 2000);

const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let db: FaultDatabase;
let server: ServerProcess;
let signingKey: string;
const messageIds: string[] = [];

Deno.test.beforeAll(async () => {
  db = await createFaultDatabase();
  signingKey = `fault-key-${crypto.randomUUID()}`;
  for (let i = 0; i < 8; i++) {
    const messageId = newMessageId();
    await db.sql`insert into documents (email_message_id, email_status) values (${messageId}, 'SENT')`;
    messageIds.push(messageId.slice(1, -1));
  }
  server = await startServerProcess({
    databaseUrl: db.url,
    signingKey,
    env: { BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS) },
    name: "server",
  });
  console.log(`server: deno run ${START_PERMISSIONS.join(" ")} main.ts (pid ${server.pid})`);
});

Deno.test.afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

/** Reads a file under /proc/<server>/ (Deno grants /proc only with --allow-all; the suite has --allow-run). */
async function procOutput(args: string[]): Promise<string> {
  return (await run(args.slice(1), { program: args[0] })).stdout;
}

/** Open file descriptors of the server process (sockets included). */
async function openFds(): Promise<number> {
  return (await procOutput(["ls", "-1", `/proc/${server.pid}/fd`])).trim().split("\n").length;
}

/** Resident memory of the server process, in MiB. */
async function rssMiB(): Promise<number> {
  const status = await procOutput(["cat", `/proc/${server.pid}/status`]);
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

async function realWebhook(): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  const body = JSON.stringify({
    signature: signWebhook(signingKey),
    "event-data": eventData("delivered", messageIds[0]),
  });
  const response = await fetch(`${server.url}/v1/mailgun/webhook`, { method: "POST", body });
  await response.body?.cancel();
  return { status: response.status, ms: performance.now() - started };
}

/** A raw client that sends a request head, then the body a little at a time, for as long as it is let. */
interface SlowClient {
  /** The status of the answer and when it came, or null when the connection ended without one. */
  answer: Promise<{ status: number; ms: number } | null>;
  /** Whether the server ended the connection. */
  closedByServer(): boolean;
  close(): void;
}

async function slowClient(framing: "content-length" | "chunked", everyMs: number): Promise<SlowClient> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const started = performance.now();
  let stopped = false;
  let serverClosed = false;
  await conn.write(encoder.encode(
    `POST /v1/mailgun/webhook HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
      (framing === "chunked" ? "transfer-encoding: chunked\r\n\r\n" : "content-length: 100000\r\n\r\n"),
  ));
  const { promise: answer, resolve } = Promise.withResolvers<{ status: number; ms: number } | null>();
  (async () => {
    const buffer = new Uint8Array(4096);
    let text = "";
    for (;;) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n));
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (match) resolve({ status: Number(match[1]), ms: performance.now() - started });
    }
    if (!stopped) serverClosed = true;
    resolve(null);
  })();
  (async () => {
    const piece = encoder.encode(framing === "chunked" ? "1\r\n{\r\n" : "{");
    while (!stopped) {
      try {
        await conn.write(piece);
      } catch {
        return;
      }
      await sleep(everyMs);
    }
  })();
  return {
    answer,
    closedByServer: () => serverClosed,
    close() {
      stopped = true;
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    },
  };
}

Deno.test("bodies that trickle in or never end get 408 at the body timeout, hold no handler, and starve nothing", async () => {
  const fdsBefore = await openFds();
  // A 408 is logged as a warning: on stderr.
  const linesBefore = server.stderr.length;
  const clients = [
    ...await Promise.all(Array.from({ length: 40 }, () => slowClient("content-length", 200))),
    ...await Promise.all(Array.from({ length: 40 }, () => slowClient("chunked", 200))),
  ];
  try {
    // Real traffic meanwhile is served at once, not after the slow bodies.
    const real = [];
    for (let i = 0; i < 10; i++) real.push(await realWebhook());
    const answers = await Promise.all(
      clients.map((client) => client.answer.then((a) => a, () => null)).map((p) =>
        Promise.race([p, sleep(BODY_TIMEOUT_MS + MARGIN_MS).then(() => "no answer" as const)])
      ),
    );
    const late = answers.filter((a) => a === "no answer" || a === null || a.ms > BODY_TIMEOUT_MS + MARGIN_MS);
    console.log(
      `slow bodies: ${clients.length} clients, answers ${JSON.stringify(summariseAnswers(answers))}, ` +
        `real webhooks meanwhile ${real.map((r) => r.status).join(",")} (slowest ${
          Math.round(Math.max(...real.map((r) => r.ms)))
        } ms)`,
    );
    assert.deepEqual(late, [], "a slow body was not cut off in time");
    assert.ok(answers.every((a) => typeof a === "object" && a?.status === 408));
    assert.ok(real.every((r) => r.status === 200 && r.ms < MARGIN_MS), "a real webhook waited behind slow bodies");
    // No statement was run for a body that never arrived.
    assert.ok((await db.serviceConnections()) <= 8);
    await sleep(200);
    const timeouts = server.stderr.slice(linesBefore).filter((line) => line.includes('"outcome":"timeout"'));
    assert.equal(timeouts.length, clients.length, "one log line per cut-off body");
    const stillOpen = clients.filter((client) => !client.closedByServer()).length;
    console.log(
      `slow bodies: ${stillOpen} of ${clients.length} connections still open while their clients keep sending`,
    );
  } finally {
    for (const client of clients) client.close();
  }
  // Once the clients go, nothing of them stays behind in the server.
  let fdsAfter = await openFds();
  for (let i = 0; i < 50 && fdsAfter > fdsBefore + 2; i++) {
    await sleep(100);
    fdsAfter = await openFds();
  }
  console.log(`slow bodies: open descriptors ${fdsBefore} before, ${fdsAfter} after`);
  assert.ok(fdsAfter <= fdsBefore + 2, `descriptors leaked: ${fdsBefore} -> ${fdsAfter}`);
});

function summariseAnswers(answers: unknown[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const a of answers) {
    const key = typeof a === "object" && a !== null ? String((a as { status: number }).status) : String(a);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/**
 * Sends a chunked body without Content-Length as fast as the server takes it,
 * until an answer comes (or `capBytes`); returns the status and bytes sent.
 */
async function floodChunked(capBytes: number): Promise<{ status: number; sent: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  let status = 0;
  let sent = 0;
  try {
    await conn.write(encoder.encode(
      "POST /v1/mailgun/webhook HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n\r\n",
    ));
    const reading = (async () => {
      const buffer = new Uint8Array(4096);
      const n = await conn.read(buffer).catch(() => null);
      if (n !== null) status = Number(/^HTTP\/1\.1 (\d{3})/.exec(new TextDecoder().decode(buffer.subarray(0, n)))?.[1]);
    })();
    const data = new Uint8Array(64 * 1024).fill(0x20);
    const chunk = new Uint8Array([...encoder.encode("10000\r\n"), ...data, ...encoder.encode("\r\n")]);
    while (status === 0 && sent < capBytes) {
      try {
        for (let offset = 0; offset < chunk.length;) offset += await conn.write(chunk.subarray(offset));
      } catch {
        break;
      }
      sent += data.length;
    }
    await Promise.race([reading, sleep(MARGIN_MS)]);
    return { status, sent };
  } finally {
    conn.close();
  }
}

Deno.test("the 1 MiB limit holds for chunked bodies without Content-Length, and for a declared length", async () => {
  const rssBefore = await rssMiB();
  // Eight never-ending bodies at once: each is cut off at the limit, none is buffered whole.
  const floods = await Promise.all(Array.from({ length: 8 }, () => floodChunked(FLOOD_CAP_BYTES)));
  const rssAfter = await rssMiB();
  console.log(
    `oversized chunked bodies: statuses ${floods.map((f) => f.status).join(",")}, ` +
      `MiB sent before the answer ${floods.map((f) => (f.sent / 1024 / 1024).toFixed(1)).join(",")}, ` +
      `server memory ${rssBefore.toFixed(0)} -> ${rssAfter.toFixed(0)} MiB`,
  );
  assert.ok(floods.every((f) => f.status === 413), "a chunked body over the limit was not refused with 413");
  // The answer came while the body was still coming (the client writes as fast as loopback takes it, so what it
  // sent meanwhile depends on scheduling); that the server did not keep it is shown by its memory.
  assert.ok(floods.every((f) => f.sent < FLOOD_CAP_BYTES), "no answer before the whole body was sent");
  assert.ok(rssAfter - rssBefore < 128, `server memory grew by ${(rssAfter - rssBefore).toFixed(0)} MiB`);

  // A declared length over the limit is refused before any of the body is sent.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    const started = performance.now();
    await conn.write(encoder.encode(
      "POST /v1/mailgun/webhook HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 10485760\r\n\r\n",
    ));
    const buffer = new Uint8Array(1024);
    const n = await conn.read(buffer);
    const ms = performance.now() - started;
    assert.match(new TextDecoder().decode(buffer.subarray(0, n ?? 0)), /^HTTP\/1\.1 413/);
    assert.ok(ms < BODY_TIMEOUT_MS, `the 413 came after ${ms} ms, not before the body`);
  } finally {
    conn.close();
  }
});

Deno.test("hundreds of idle and half-open connections do not starve real requests", async () => {
  const idle: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 500; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      // Half say nothing at all; half stop in the middle of their request head.
      if (i % 2 === 1) {
        await conn.write(encoder.encode("POST /v1/mailgun/webhook HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: "));
      }
      idle.push(conn);
    }
    const started = performance.now();
    const results: { status: number; ms: number }[] = [];
    await Promise.all(Array.from({ length: 16 }, async () => {
      for (let i = 0; i < 10; i++) results.push(await realWebhook());
    }));
    const health = await fetch(`${server.url}/healthz`);
    await health.body?.cancel();
    const total = performance.now() - started;
    const slowest = Math.max(...results.map((r) => r.ms));
    console.log(
      `idle connections: ${idle.length} open; ${results.length} real webhooks in ${Math.round(total)} ms, ` +
        `slowest ${Math.round(slowest)} ms`,
    );
    assert.ok(results.every((r) => r.status === 200));
    assert.equal(health.status, 200);
    assert.ok(slowest < MARGIN_MS, `a real request took ${slowest} ms`);
  } finally {
    for (const conn of idle) conn.close();
  }
});

Deno.test("fuzz against the server process: never a 5xx, never a write without a valid signature, never the key in a log line", async () => {
  const linesBefore = checkLogs(server, signingKey).filter((line) => line.msg === "webhook").length;
  const report = await fuzzWebhook(
    { url: server.url, key: signingKey, sql: db.sql, messageIds },
    FUZZ_SEED + 1,
    FUZZ_RUNS,
  );
  await sleep(200);
  const logs = checkLogs(server, signingKey);
  const webhookLines = logs.filter((line) => line.msg === "webhook").length - linesBefore;
  console.log(
    `fuzz against the server process: ${report.cases} cases, seed ${FUZZ_SEED + 1}, ` +
      `${report.webhookPosts} webhook posts, ${webhookLines} webhook log lines, statuses ${
        JSON.stringify(report.byStatus)
      }`,
  );
  assert.equal(report.cases, FUZZ_RUNS);
  assert.equal(webhookLines, report.webhookPosts, "one log line per webhook request, however hostile");
  const denied = server.stderr.filter((line) => /NotCapable|PermissionDenied|Requires .* access/.test(line));
  assert.deepEqual(denied, [], "the start task's permissions were not enough");
});
