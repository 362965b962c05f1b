/**
 * Property-based fuzzing (fast-check) of the request path: over HTTP against
 * the running service on a real database, and of the parsers directly for
 * volume. Seeds are fixed and printed; FUZZ_SEED and FUZZ_RUNS change them.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { errorStatus } from "../../src/http/error_response.ts";
import { parseEventData } from "../../src/mailgun/parse_event_data.ts";
import { parseWebhookBody } from "../../src/mailgun/parse_webhook_body.ts";
import { signWebhook } from "../../src/mailgun/sign_webhook.ts";
import { importSigningKeys, verifySignature } from "../../src/mailgun/verify_signature.ts";
import { fuzzCase, fuzzWebhook, hostileValue } from "../helpers/hostile_input.ts";
import { eventData } from "../helpers/mailgun.ts";
import { insertRow, newMessageId, startTestService } from "../helpers/test_service.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? 20260427);
const HTTP_RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? 8000);
const PARSER_RUNS = HTTP_RUNS * 10;

Deno.test("fuzz over HTTP: never a 5xx, never a write without a valid signature, never the key in a log line", async () => {
  const svc = await startTestService();
  try {
    const messageIds: string[] = [];
    for (let i = 0; i < 6; i++) {
      const messageId = newMessageId();
      await insertRow(svc.sql, i < 4 ? "documents" : "tenants", i % 2 === 0 ? messageId : messageId.slice(1, -1));
      messageIds.push(messageId.slice(1, -1));
    }
    const started = performance.now();
    const report = await fuzzWebhook(
      { url: svc.url, key: svc.key, sql: svc.sql, messageIds, logLines: () => svc.rawLogs },
      SEED,
      HTTP_RUNS,
    );
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `fuzz over HTTP (${svc.db.kind}): ${report.cases} cases in ${seconds} s, seed ${SEED}, ` +
        `${report.webhookPosts} webhook posts, ${report.signedApplied} signed answered 200`,
    );
    console.log(`  by kind: ${JSON.stringify(report.byKind)}`);
    console.log(`  by status: ${JSON.stringify(report.byStatus)}`);
    assert.equal(report.cases, HTTP_RUNS);
    // The generator must reach every branch the invariants are about.
    for (const status of ["200", "400", "401", "406", "413"]) assert.ok(report.byStatus[status] > 0, `no ${status}`);
    assert.ok(!svc.rawLogs.join("\n").includes(svc.key));
  } finally {
    await svc.close();
  }
});

Deno.test("fuzz the parsers: every failure is a known error answered 4xx, never an unexpected throw", async () => {
  const key = `fuzz-key-${crypto.randomUUID()}`;
  const keys = importSigningKeys([key]);
  const window = { maxAgeSeconds: 86_400, maxFutureSeconds: 300 };
  const good = signWebhook(key);
  let cases = 0;
  const expectHttp = (error: unknown, status: number) => {
    const answer = errorStatus(error);
    assert.notEqual(
      answer.outcome,
      "internal_error",
      `unexpected ${(error as Error)?.name}: ${(error as Error)?.message}`,
    );
    assert.equal(answer.status, status);
  };
  await fc.assert(
    fc.asyncProperty(fuzzCase, hostileValue, fc.constantFrom("timestamp", "token", "signature"), async (c, v, f) => {
      cases++;
      // The body parser: any bytes.
      const bytes = c.recipe.kind === "bytes" ? c.recipe.bytes : new TextEncoder().encode(JSON.stringify(v) ?? "");
      let body;
      try {
        body = parseWebhookBody(bytes);
      } catch (error) {
        expectHttp(error, 400);
      }
      // The signature check: one field of a good block spoiled.
      const block = { ...good, [f]: v };
      try {
        const verified = await verifySignature(block, keys, window);
        assert.equal(String(v), good[f], "a spoiled block verified");
        assert.equal(verified.token, good.token);
      } catch (error) {
        expectHttp(error, 401);
      }
      // The event-data check: Mailgun's payload with a hostile value somewhere, or the parsed body's.
      const data = c.recipe.kind === "signed" || c.recipe.kind === "forged"
        ? { ...eventData(c.recipe.base, "m@x"), [c.recipe.mutations[0]?.path.at(-1) ?? "id"]: v }
        : body?.eventData;
      try {
        const parsed = parseEventData(data);
        assert.ok(!holdsNul(JSON.parse(parsed.json)), "a NUL reached the stored JSON");
        if (parsed.effect !== null) {
          assert.ok(Number.isFinite(parsed.timestamp) && parsed.timestamp >= 0);
          assert.ok(parsed.messageId === null || parsed.messageId.length > 0);
        }
      } catch (error) {
        expectHttp(error, 406);
      }
    }),
    { seed: SEED, numRuns: PARSER_RUNS },
  );
  console.log(`fuzz the parsers: ${cases} cases, seed ${SEED}`);
  assert.equal(cases, PARSER_RUNS);
});

/** True when a NUL character is anywhere in a JSON value (PostgreSQL's jsonb cannot hold it). */
function holdsNul(value: unknown): boolean {
  if (typeof value === "string") return value.includes("\u0000");
  if (Array.isArray(value)) return value.some(holdsNul);
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).some(([key, item]) => key.includes("\u0000") || holdsNul(item));
  }
  return false;
}
