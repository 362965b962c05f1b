/**
 * The request path of the service in process, for bench/request_path_bench.ts
 * (`deno bench`) and bench/request_path_cpu.ts (CPU time, repeated): no
 * network, no database. Pre-made signed bodies (bench/signed_bodies.ts) go
 * through the service's own request handler (src/http/create_handler.ts) and
 * batch writer, whose statement is built (the batch JSON and writeBatch's
 * query) and handed to a stand-in for postgres.js that answers at once, as
 * the database does for a matched, new event. The log line is built and
 * discarded (the service writes it to stdout). Both handlers start from a
 * `Request` made here, as Deno.serve hands one over.
 */
import type { Sql } from "postgres";
import { createBatchWriter } from "../src/batch_writer/batch_writer.ts";
import { WEBHOOK_PATH } from "../src/config/routes.ts";
import { type BatchRow, writeBatch } from "../src/db/write_batch_query.ts";
import type { HostSchemaMonitor } from "../src/db/host_schema_monitor.ts";
import { createHandler } from "../src/http/create_handler.ts";
import { jsonResponse } from "../src/http/error_response.ts";
import { readBody } from "../src/http/read_body.ts";
import { parseEventData } from "../src/mailgun/parse_event_data.ts";
import { parseWebhookBody } from "../src/mailgun/parse_webhook_body.ts";
import { importSigningKeys, verifySignature } from "../src/mailgun/verify_signature.ts";
import { setLogWriter } from "../src/reporting/log.ts";
import { reportWebhook } from "../src/reporting/report_webhook.ts";
import { signedBodies } from "./signed_bodies.ts";

const KEY = `bench-key-${crypto.randomUUID()}`;
/** Distinct bodies, sent in turn: enough that no cache sees the same one twice in a row. */
const BODY_COUNT = 2_000;
const DOCUMENTS = 100_000;
const URL_OF_WEBHOOK = `http://127.0.0.1:8000${WEBHOOK_PATH}`;
/** The service's defaults (src/config/service_config.ts). */
const BODY_LIMIT_BYTES = 1024 * 1024;
const BODY_TIMEOUT_MS = 10_000;
const WINDOW = { maxAgeSeconds: 24 * 60 * 60, maxFutureSeconds: 5 * 60 };

const encoder = new TextEncoder();
const bodies = signedBodies(KEY, BODY_COUNT, DOCUMENTS).map((body) => encoder.encode(body));
const keys = importSigningKeys([KEY]);

/**
 * Stands in for postgres.js: writeBatch calls it as a tagged template, with
 * the batch JSON as its first value; it answers each row "accepted, one row
 * matched, one entry appended", as the database does for a new event.
 */
function standInSql(_strings: TemplateStringsArray, ...values: unknown[]) {
  const json = values[0] as string;
  // The last row's `n` (rows are numbered from 0) gives the batch's size without parsing it.
  const last = json.lastIndexOf('{"n":');
  const rows = Number(json.slice(last + 5, json.indexOf(",", last))) + 1;
  const result = Array.from(
    { length: rows },
    (_, n) => ({ n, accepted: true, expired: false, matched: 1, appended: 1 }),
  );
  return Object.assign(Promise.resolve(result), { cancel: () => {} });
}
const sql = standInSql as unknown as Sql;

const writer = createBatchWriter(sql, {
  maxBatch: 128,
  maxInFlight: 4,
  queryTimeoutMs: 5_000,
  lockTimeoutMs: 1_000,
  deadlineMs: 6_000,
  maxQueued: 10_000,
});
const handler = createHandler({
  signingKeys: keys,
  parentSigningKeys: [],
  window: WINDOW,
  bodyLimitBytes: BODY_LIMIT_BYTES,
  bodyTimeoutMs: BODY_TIMEOUT_MS,
  writer,
  // Only /healthz reads these; the webhook path never does.
  sql,
  healthTimeoutMs: 5_000,
  migrations: [],
  hostSchema: {} as HostSchemaMonitor,
});

// Built, then dropped: the cost of the line is counted, not that of writing it to a terminal.
let lastLine = "";
setLogWriter((line) => void (lastLine = line));

let next = 0;
function nextBody(): Uint8Array<ArrayBuffer> {
  next = (next + 1) % bodies.length;
  return bodies[next];
}

function request(body: Uint8Array<ArrayBuffer>): Request {
  return new Request(URL_OF_WEBHOOK, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", "content-length": String(body.byteLength) },
  });
}

/** The yardstick: a hello-world handler that reads the body and answers "ok" (bench/hello_server.ts's). */
export async function helloRequest(): Promise<void> {
  const incoming = request(nextBody());
  await incoming.arrayBuffer();
  await new Response("ok").arrayBuffer();
}

/** One webhook through the service's handler and batch writer, on the next body; throws unless answered 200. */
export async function webhookRequest(): Promise<void> {
  const response = await handler(request(nextBody()));
  if (response.status !== 200) throw new Error(`The webhook was answered ${response.status}: ${lastLine}`);
  await response.arrayBuffer();
}

// Each step alone, on inputs prepared by the steps before it.
const parsedBodies = bodies.map((bytes) => parseWebhookBody(bytes));
const events = parsedBodies.map((body) => parseEventData(body.eventData));
const rows: BatchRow[] = events.map((parsed, i) => ({
  kind: "event",
  token: `token-${i}`,
  signedAt: Date.now() / 1000,
  event: {
    type: parsed.effect!.type,
    status: parsed.effect!.status,
    eventId: parsed.id,
    eventTimestamp: parsed.timestamp,
    messageId: parsed.messageId!,
    recipient: parsed.recipient,
    severity: parsed.severity,
    reason: parsed.reason,
    eventData: parsed.json,
  },
}));
/** Each step of the webhook path alone, by name, on the i-th body (prepared by the steps before it). */
export const steps: [string, (i: number) => unknown][] = [];
const step = (name: string, fn: (i: number) => unknown) => steps.push([name, fn]);

/** How many distinct bodies the steps take turns on. */
export const bodyCount = bodies.length;

step("read the body (readBody)", (i) => readBody(request(bodies[i]), BODY_LIMIT_BYTES, BODY_TIMEOUT_MS));
step("parse the body (decode, JSON.parse)", (i) => parseWebhookBody(bodies[i]));
step("verify the signature (HMAC)", (i) => verifySignature(parsedBodies[i].signature, keys, WINDOW));
step("parse the event (zod, storable JSON)", (i) => parseEventData(parsedBodies[i].eventData));
step("build the statement (writeBatch, one row)", (i) => writeBatch(sql, [rows[i]], 1_000));
step("the log line and telemetry (reportWebhook)", (i) =>
  reportWebhook({
    status: 200,
    outcome: "applied",
    eventId: events[i].id ?? undefined,
    event: events[i].event,
    messageId: events[i].messageId ?? undefined,
    rows: 1,
    keyIndex: 0,
  }, 1.23));
step("the answer (jsonResponse)", () => jsonResponse(200, { ok: true, outcome: "applied" }));
