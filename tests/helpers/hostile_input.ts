/**
 * Property-based fuzzing of the whole request path (fast-check): hostile
 * bodies, signature blocks and event-data, sent over HTTP to a running
 * service, with the invariants the service promises checked after each case:
 * - never a 5xx (the database is up throughout);
 * - never a write without a valid signature (tokens, trail and statuses are
 *   unchanged after every unsigned, forged, replayed or truncated request);
 * - a validly signed request is answered 200 or refused with 4xx, and a
 *   refused one adds nothing to the trail;
 * - the log stays one JSON object per line and never holds the key.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Sql } from "postgres";
import { type SignatureBlock, signWebhook } from "../../src/mailgun/sign_webhook.ts";
import { eventData, type Kind } from "./mailgun.ts";

/** A literal written into the body as it is, to reach what JSON.stringify never writes (1e999, NaN, -0). */
export class RawLiteral {
  constructor(readonly text: string) {}
}

/** Marks a field to delete. */
export const DELETE = Symbol("delete");

/** A value put in a field: JSON, a raw literal, or a deletion. */
export type Hostile = unknown;

/** Sets `value` at `path` in the event-data ([] replaces the event-data itself). */
export interface Mutation {
  path: string[];
  value: Hostile;
}

/** How a signature block is spoiled (for requests that must write nothing). */
export type Forgery =
  | { kind: "field"; field: "timestamp" | "token" | "signature"; value: Hostile }
  | { kind: "block"; value: Hostile }
  | { kind: "tamper"; field: "timestamp" | "token" | "signature"; at: number }
  | { kind: "wrong-key" }
  | { kind: "stale"; seconds: number }
  | { kind: "future"; seconds: number }
  | { kind: "missing" }
  | { kind: "uppercase-wrong" };

/** What a fuzz case sends. */
export type Recipe =
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "text"; text: string }
  | { kind: "json"; value: unknown }
  | { kind: "deep"; depth: number; open: string; close: string }
  | { kind: "forged"; forgery: Forgery; base: Kind; mutations: Mutation[] }
  | { kind: "replay"; pick: number; base: Kind; mutations: Mutation[] }
  | { kind: "truncated"; fraction: number; base: Kind; mutations: Mutation[] }
  | { kind: "signed"; base: Kind; target: number; mutations: Mutation[] };

/** A recipe and how it travels. */
export interface FuzzCase {
  recipe: Recipe;
  method: string;
  /** Almost always the webhook; sometimes a near miss. */
  path: string;
  contentType: string | null;
  /** "short": a raw connection declares the whole length, sends part of it, and closes its side. */
  transport: "fetch" | "short";
  shortAt: number;
}

const WEBHOOK_PATH = "/v1/mailgun/webhook";
const KINDS: Kind[] = ["delivered", "permanent", "temporary", "complained", "delayed-bounce", "opened"];
const FIELDS = ["timestamp", "token", "signature"] as const;

/** Paths of a Mailgun event-data, each a place for a wrong type. */
const EVENT_PATHS: string[][] = [
  [],
  ["event"],
  ["id"],
  ["timestamp"],
  ["severity"],
  ["reason"],
  ["recipient"],
  ["message"],
  ["message", "headers"],
  ["message", "headers", "message-id"],
  ["flags"],
  ["flags", "is-delayed-bounce"],
  ["user-variables"],
  ["delivery-status"],
  ["delivery-status", "description"],
  ["delivery-status", "code"],
  ["tags"],
  ["envelope", "targets"],
  ["__proto__"],
  ["constructor"],
  ["storage", "url"],
];

const controlChars = fc.string({ unit: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)) });
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));

/** Strings an attacker or a broken client might send. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: "binary", maxLength: 64 }),
  fc.string({ unit: "grapheme", maxLength: 64 }),
  fc.string({ unit: "binary-ascii", maxLength: 64 }),
  controlChars,
  fc.tuple(fc.string({ maxLength: 8 }), loneSurrogate, fc.string({ maxLength: 8 })).map((parts) => parts.join("")),
  fc.constantFrom(
    "",
    " ",
    "\u0000",
    "a\u0000b",
    "\u2028\u2029",
    "\u202e\u0645\u0631\u062d\u0628\u0627",
    "\ufeff",
    "\ud83d\udca5".repeat(300),
    "'; drop table documents; --",
    "' or '1'='1",
    "$1",
    "\\",
    '"}\n{"level":"info","msg":"webhook","outcome":"applied"}',
    "\r\nX-Injected: 1",
    "<>",
    "< >",
    "<<x@y>>",
    "x".repeat(3000),
    "NaN",
    "Infinity",
    "-0",
    "1e999",
    "0x10",
    "1_000",
    " 12",
    "١٢٣",
    "permanent ",
    "PERMANENT",
  ),
);

/** Numbers at and beyond every edge (JSON.stringify writes NaN and Infinity as null). */
export const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(
    0,
    -0,
    -1,
    0.5,
    1e21,
    -1e21,
    1e308,
    -1e308,
    5e-324,
    2 ** 53 + 1,
    253402300799,
    253402300800,
    253402300799.999,
    Number.MAX_SAFE_INTEGER,
    NaN,
    Infinity,
    -Infinity,
  ),
);

/** Literals only a hand-written body can hold: out-of-range numbers, and things that are not JSON at all. */
export const rawLiteral: fc.Arbitrary<RawLiteral> = fc.constantFrom(
  "1e999",
  "-1e999",
  "1e-999",
  "-0",
  "-0.0",
  "1E400",
  "9".repeat(400),
  "0." + "0".repeat(400) + "1",
  "NaN",
  "Infinity",
  "-Infinity",
  "undefined",
  "0x1F",
  "01",
  "1.",
  "+1",
  "'single'",
  '"\\ud800"',
  '"\\u0000"',
  '"unterminated',
).map((text) => new RawLiteral(text));

/** Nested arrays or objects, up to far deeper than the service accepts. */
export const deepValue: fc.Arbitrary<unknown> = fc.tuple(fc.integer({ min: 1, max: 300 }), fc.boolean()).map(
  ([depth, arrays]) => {
    let value: unknown = "leaf";
    for (let i = 0; i < depth; i++) value = arrays ? [value] : { d: value };
    return value;
  },
);

/** Any value that may land in a field. */
export const hostileValue: fc.Arbitrary<Hostile> = fc.oneof(
  { weight: 3, arbitrary: hostileString },
  { weight: 2, arbitrary: hostileNumber },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3, stringUnit: "binary" }) },
  { weight: 1, arbitrary: rawLiteral },
  { weight: 1, arbitrary: deepValue },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}, DELETE) },
  { weight: 1, arbitrary: fc.array(hostileString, { maxLength: 4 }) },
);

/** Timestamps get extra attention: they become timestamptz, where a NaN, an Infinity or year 10000 would break. */
const hostileTimestamp: fc.Arbitrary<Hostile> = fc.oneof(
  hostileNumber,
  rawLiteral,
  fc.double({ min: -1e6, max: 3e11 }),
  fc.constantFrom("1e3", " 1", "1.0", "01", "1770000000.123456789012", "\uff11\uff17", "", "-1", "1770000000 "),
);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ path: fc.constantFrom(...EVENT_PATHS), value: hostileValue }) },
  { weight: 1, arbitrary: fc.record({ path: fc.constant<string[]>(["timestamp"]), value: hostileTimestamp }) },
);
const mutations = fc.array(mutation, { minLength: 0, maxLength: 3 });
const base = fc.constantFrom(...KINDS);

const forgery: fc.Arbitrary<Forgery> = fc.oneof(
  fc.record({ kind: fc.constant("field" as const), field: fc.constantFrom(...FIELDS), value: hostileValue }),
  fc.record({ kind: fc.constant("block" as const), value: hostileValue }),
  fc.record({ kind: fc.constant("tamper" as const), field: fc.constantFrom(...FIELDS), at: fc.nat() }),
  fc.constant({ kind: "wrong-key" as const }),
  fc.record({ kind: fc.constant("stale" as const), seconds: fc.integer({ min: 86_401, max: 10 * 365 * 86_400 }) }),
  fc.record({ kind: fc.constant("future" as const), seconds: fc.integer({ min: 301, max: 10 * 365 * 86_400 }) }),
  fc.constant({ kind: "missing" as const }),
  fc.constant({ kind: "uppercase-wrong" as const }),
);

/** Every kind of recipe, weighted towards the ones that look most like Mailgun's. */
export const recipe: fc.Arbitrary<Recipe> = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("bytes" as const), bytes: fc.uint8Array({ maxLength: 512 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("text" as const), text: hostileString }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("json" as const),
      value: fc.jsonValue({ maxDepth: 5, stringUnit: "binary" }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("deep" as const),
      depth: fc.integer({ min: 1, max: 200_000 }),
      open: fc.constantFrom("[", '{"signature":', '{"event-data":'),
      close: fc.constant(""),
    }).map((r) => ({ ...r, close: r.open === "[" ? "]" : "}" })),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("forged" as const), forgery, base, mutations }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("replay" as const), pick: fc.nat(), base, mutations }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("truncated" as const),
      fraction: fc.double({ min: 0, max: 0.999, noNaN: true }),
      base,
      mutations,
    }),
  },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("signed" as const), base, target: fc.nat(), mutations }) },
);

/** A whole case: recipe, method, path, content type and transport. */
export const fuzzCase: fc.Arbitrary<FuzzCase> = fc.record({
  recipe,
  method: fc.oneof({ weight: 20, arbitrary: fc.constant("POST") }, fc.constantFrom("GET", "PUT", "PATCH", "DELETE")),
  path: fc.oneof(
    { weight: 30, arbitrary: fc.constant(WEBHOOK_PATH) },
    fc.constantFrom(
      "/v1/mailgun/webhook/",
      "/v1/mailgun//webhook",
      "/v1/mailgun/webhook%00",
      "/v1/mailgun/x/../webhook",
      "/V1/MAILGUN/WEBHOOK",
      "/",
      "/healthz",
    ),
  ),
  contentType: fc.oneof(
    { weight: 6, arbitrary: fc.constant("application/json") },
    fc.constantFrom(
      null,
      "",
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=xyz",
      "application/json; charset=utf-16",
      "application/octet-stream",
    ),
    fc.string({ unit: "grapheme-ascii", maxLength: 40 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
  ),
  transport: fc.oneof({ weight: 12, arbitrary: fc.constant("fetch" as const) }, fc.constant("short" as const)),
  shortAt: fc.double({ min: 0, max: 0.999, noNaN: true }),
});

/** What a running service offers to the fuzzer. */
export interface FuzzTarget {
  url: string;
  key: string;
  /** A pool on the service's database, for the before/after fingerprint. */
  sql: Sql;
  /** Message ids of rows that signed events may hit. */
  messageIds: string[];
  /** The service's log lines so far, when they can be read synchronously (in-process). */
  logLines?: () => string[];
}

/** The figures of a fuzz run. */
export interface FuzzReport {
  cases: number;
  byKind: Record<string, number>;
  byStatus: Record<string, number>;
  /** Requests that reached the webhook with POST (each must leave exactly one log line). */
  webhookPosts: number;
  signedApplied: number;
}

interface Built {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Uint8Array<ArrayBuffer>;
  /** True when the request carries a valid signature over a fresh token, with its whole body. */
  signed: boolean;
  /** The signature block of a signed request (spent once answered 200 or 406). */
  signature?: SignatureBlock;
}

const encoder = new TextEncoder();

function applyMutations(data: Record<string, unknown>, list: Mutation[]): unknown {
  let root: unknown = data;
  for (const { path, value } of list) {
    if (path.length === 0) {
      root = value === DELETE ? undefined : value;
      continue;
    }
    if (typeof root !== "object" || root === null) continue;
    let node = root as Record<string, unknown>;
    for (const key of path.slice(0, -1)) {
      const child = node[key];
      if (typeof child !== "object" || child === null) {
        // Define, not assign: "__proto__" must become an own key, as JSON.parse makes it.
        Object.defineProperty(node, key, { value: {}, enumerable: true, writable: true, configurable: true });
      }
      node = node[key] as Record<string, unknown>;
    }
    const last = path.at(-1)!;
    if (value === DELETE) delete node[last];
    else Object.defineProperty(node, last, { value, enumerable: true, writable: true, configurable: true });
  }
  return root;
}

/** JSON.stringify, with {@link RawLiteral}s written as they are. */
function stringify(value: unknown): string {
  const raws: string[] = [];
  const nonce = crypto.randomUUID();
  const text = JSON.stringify(value, (_key, item) => {
    if (item instanceof RawLiteral) {
      raws.push(item.text);
      return `@@raw-${raws.length - 1}-${nonce}@@`;
    }
    return item;
  });
  if (text === undefined) return "";
  return text.replace(new RegExp(`"@@raw-(\\d+)-${nonce}@@"`, "g"), (_m, i) => raws[Number(i)]);
}

/** Makes the request of a case; `used` holds signature blocks already spent, for replays. */
function build(c: FuzzCase, target: FuzzTarget, used: SignatureBlock[]): Built {
  const r = c.recipe;
  const headers: Record<string, string> = c.contentType === null ? {} : { "content-type": c.contentType };
  const event = (kind: Kind, messageId: string, list: Mutation[]) => applyMutations(eventData(kind, messageId), list);
  // Forged, replayed and truncated requests aim at a real row: they must still change nothing.
  const someId = () => target.messageIds[0];
  let text: string | Uint8Array<ArrayBuffer>;
  let signed = false;
  let signature: SignatureBlock | undefined;
  switch (r.kind) {
    case "bytes":
      text = new Uint8Array(r.bytes);
      break;
    case "text":
      text = r.text;
      break;
    case "json":
      text = stringify(r.value);
      break;
    case "deep":
      text = r.open.repeat(r.depth) + "1" + r.close.repeat(r.depth);
      break;
    case "forged": {
      const data = event(r.base, someId(), r.mutations);
      text = stringify({ signature: forge(r.forgery, target.key), "event-data": data });
      break;
    }
    case "replay": {
      const data = event(r.base, someId(), [...r.mutations, { path: ["id"], value: `replay-${crypto.randomUUID()}` }]);
      const block = used.length > 0 ? used[r.pick % used.length] : signWebhook("not-the-key");
      text = stringify({ signature: block, "event-data": data });
      break;
    }
    case "truncated": {
      const data = event(r.base, someId(), r.mutations);
      const whole = stringify({ signature: signWebhook(target.key), "event-data": data });
      text = whole.slice(0, Math.floor(whole.length * r.fraction));
      break;
    }
    case "signed": {
      const data = event(r.base, target.messageIds[r.target % target.messageIds.length], r.mutations);
      signature = signWebhook(target.key);
      text = stringify({ signature, "event-data": data });
      signed = true;
      break;
    }
  }
  const body = typeof text === "string" ? encoder.encode(text) : text;
  const reachesWebhook = c.method === "POST" && new URL(c.path, target.url).pathname === WEBHOOK_PATH;
  return {
    method: c.method,
    path: c.path,
    headers,
    body,
    signed: signed && reachesWebhook && c.transport === "fetch",
    signature,
  };
}

function forge(forgery: Forgery, key: string): unknown {
  const good = signWebhook(key);
  const now = Math.floor(Date.now() / 1000);
  switch (forgery.kind) {
    case "field": {
      const block: Record<string, unknown> = { ...good };
      if (forgery.value === DELETE) delete block[forgery.field];
      else block[forgery.field] = forgery.value;
      // A hostile value can stand for the original (e.g. the same digits as a number): keep only real forgeries.
      return String(block[forgery.field]) === good[forgery.field] ? { ...block, signature: "0".repeat(64) } : block;
    }
    case "block":
      return forgery.value === DELETE ? undefined : forgery.value;
    case "tamper": {
      const value = good[forgery.field];
      const at = forgery.at % value.length;
      const swapped = value[at] === "1" ? "2" : "1";
      return { ...good, [forgery.field]: value.slice(0, at) + swapped + value.slice(at + 1) };
    }
    case "wrong-key":
      return signWebhook(`${key}-rotated-away`);
    case "stale":
      return signWebhook(key, String(now - forgery.seconds));
    case "future":
      return signWebhook(key, String(now + forgery.seconds));
    case "missing":
      return undefined;
    case "uppercase-wrong":
      return { ...good, signature: (signWebhook(`${key}x`, good.timestamp, good.token)).signature.toUpperCase() };
  }
}

/** What a request got: a status, or 0 when the connection ended without an answer. */
async function send(target: FuzzTarget, request: Built, c: FuzzCase): Promise<number> {
  const url = new URL(request.path, target.url);
  if (c.transport === "fetch" || request.body.byteLength === 0) {
    const init: RequestInit = { method: request.method, headers: request.headers };
    if (request.method !== "GET") init.body = request.body;
    const response = await fetch(url, init);
    await response.body?.cancel();
    return response.status;
  }
  return await sendShort(url, request, Math.floor(request.body.byteLength * c.shortAt));
}

/** Declares the whole length, sends `sent` bytes of the body, closes the sending side, and reads the answer. */
async function sendShort(url: URL, request: Built, sent: number): Promise<number> {
  const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
  try {
    const head = [
      `${request.method} ${url.pathname} HTTP/1.1`,
      `host: ${url.host}`,
      `content-length: ${request.body.byteLength}`,
      "connection: close",
      ...Object.entries(request.headers).map(([name, value]) => `${name}: ${value}`),
      "",
      "",
    ].join("\r\n");
    await writeAll(conn, encoder.encode(head));
    await writeAll(conn, request.body.subarray(0, sent));
    await conn.closeWrite();
    const answer = await readSome(conn, 10_000);
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(answer);
    return match ? Number(match[1]) : 0;
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed by the server.
    }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.byteLength;) offset += await conn.write(bytes.subarray(offset));
}

/** Reads until the status line is in, the peer closes, or `timeoutMs` passes. */
async function readSome(conn: Deno.Conn, timeoutMs: number): Promise<string> {
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(4096);
  let text = "";
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }, timeoutMs);
  try {
    while (!text.includes("\r\n")) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) break;
      text += decoder.decode(buffer.subarray(0, n));
    }
  } finally {
    clearTimeout(timer);
  }
  return text;
}

/** What must not change without a valid signature: tokens, trail, and every status. */
async function fingerprint(sql: Sql): Promise<string> {
  const [row] = await sql`
    select (select count(*) from mailgun_webhook.tokens)::int as tokens,
           (select count(*) from email_events)::int as events,
           (select md5(coalesce(string_agg(id || ':' || email_status || ':' || coalesce(email_status_at::text, '-'), ','
                                order by id), '')) from documents) as documents,
           (select md5(coalesce(string_agg(id || ':' || email_status || ':' || coalesce(email_status_at::text, '-'), ','
                                order by id), '')) from tenants) as tenants
  `;
  return `${row.tokens}|${row.events}|${row.documents}|${row.tenants}`;
}

const UNSIGNED_STATUSES = new Set([400, 401, 404, 405, 413]);
const SIGNED_STATUSES = new Set([200, 400, 406, 413]);

/** Runs `numRuns` fuzz cases against `target` with `seed`; throws (with fast-check's counterexample) on a broken invariant. */
export async function fuzzWebhook(target: FuzzTarget, seed: number, numRuns: number): Promise<FuzzReport> {
  const report: FuzzReport = { cases: 0, byKind: {}, byStatus: {}, webhookPosts: 0, signedApplied: 0 };
  const used: SignatureBlock[] = [];
  const property = fc.asyncProperty(fuzzCase, async (c) => {
    report.cases++;
    report.byKind[c.recipe.kind] = (report.byKind[c.recipe.kind] ?? 0) + 1;
    const request = build(c, target, used);
    const before = await fingerprint(target.sql);
    const linesBefore = target.logLines?.().length ?? 0;
    const status = await send(target, request, c);
    report.byStatus[status] = (report.byStatus[status] ?? 0) + 1;
    const webhook = c.method === "POST" && new URL(c.path, target.url).pathname === WEBHOOK_PATH;
    if (webhook) report.webhookPosts++;
    const after = await fingerprint(target.sql);
    const label = `${c.recipe.kind} ${c.method} ${c.path} via ${c.transport}: ${status}`;
    assert.ok(status !== 0, `no answer: ${label}`);
    assert.ok(status < 500, `server error: ${label}`);
    if (!webhook) {
      assert.ok(status === 404 || status === 405 || (c.path === "/healthz" && status === 200), label);
    } else if (request.signed) {
      assert.ok(SIGNED_STATUSES.has(status), `signed: ${label}`);
      // Only a token the service consumed can be replayed (a 400 or 413 never reached it).
      if (status === 200 || status === 406) used.push(request.signature!);
      if (status === 200) report.signedApplied++;
      else assert.equal(after.split("|")[1], before.split("|")[1], `a refused request added to the trail: ${label}`);
    } else {
      assert.ok(UNSIGNED_STATUSES.has(status), `unsigned: ${label}`);
    }
    if (!request.signed) assert.equal(after, before, `a write without a valid signature: ${label}`);
    if (target.logLines) {
      const lines = target.logLines().slice(linesBefore);
      assert.equal(lines.filter((line) => line.includes('"msg":"webhook"')).length, webhook ? 1 : 0, label);
      for (const line of lines) {
        assert.ok(!line.includes(target.key), `a log line holds the key: ${label}`);
        assert.ok(!/[\n\r]/.test(line), `a log line was split: ${label}`);
        JSON.parse(line);
      }
    }
  });
  await fc.assert(property, { seed, numRuns, endOnFailure: true });
  return report;
}
