/**
 * Telemetry as Deno exports it: the service runs as `deno task start` would
 * (a child process, the start task's permissions) with OTEL_DENO=true, and
 * exports OTLP/HTTP JSON to a receiver served by this test.
 */
import assert from "node:assert/strict";
import { connectPostgres } from "../../src/db/connect_postgres.ts";
import { migrate } from "../../src/db/migrate.ts";
import { DURATION_METRIC, OUTCOME_ATTRIBUTE, REQUESTS_METRIC } from "../../src/reporting/telemetry.ts";
import { eventData, post, signedBody } from "../helpers/mailgun.ts";
import { failWithStderr, signalChild, spawn, START_PERMISSIONS } from "../helpers/subprocess.ts";
import { createTestDatabase } from "../helpers/test_database.ts";
import { newMessageId } from "../helpers/test_service.ts";

type Attributes = { key: string; value: Record<string, unknown> }[];
interface DataPoint {
  attributes: Attributes;
  asInt?: string | number;
  asDouble?: number;
  count?: string | number;
}
interface Metric {
  name: string;
  unit?: string;
  sum?: { dataPoints: DataPoint[] };
  histogram?: { dataPoints: DataPoint[] };
}
interface LogRecord {
  severityText?: string;
  severityNumber?: number;
  body?: { stringValue?: string };
  traceId?: string;
}
interface Span {
  name: string;
  kind: number;
  attributes: Attributes;
}

/** An OTLP/HTTP receiver that keeps what it is sent, by signal. */
function startReceiver() {
  /** Each metrics export, as sent: cumulative counts are read from one export, never across them. */
  const exports: Metric[][] = [];
  const spans: Span[] = [];
  const logs: LogRecord[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const path = new URL(request.url).pathname;
    const body = await request.json();
    if (path === "/v1/metrics") {
      const metrics: Metric[] = [];
      for (const resource of body.resourceMetrics ?? []) {
        for (const scope of resource.scopeMetrics ?? []) metrics.push(...scope.metrics);
      }
      exports.push(metrics);
    } else if (path === "/v1/logs") {
      for (const resource of body.resourceLogs ?? []) {
        for (const scope of resource.scopeLogs ?? []) logs.push(...scope.logRecords);
      }
    } else if (path === "/v1/traces") {
      for (const resource of body.resourceSpans ?? []) {
        for (const scope of resource.scopeSpans ?? []) spans.push(...scope.spans);
      }
    }
    return Response.json({});
  });
  return {
    url: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
    exports,
    spans,
    logs,
    close: () => server.shutdown(),
  };
}

function attribute(attributes: Attributes, key: string): unknown {
  const value = attributes.find((a) => a.key === key)?.value;
  return value === undefined ? undefined : Object.values(value)[0];
}

/** The cumulative count of webhooks with this outcome in one export. */
function requestCount(metrics: Metric[], outcome: string): number {
  let count = 0;
  for (const metric of metrics.filter((m) => m.name === REQUESTS_METRIC)) {
    for (const point of metric.sum?.dataPoints ?? []) {
      if (attribute(point.attributes, "outcome") === outcome) count = Number(point.asInt ?? point.asDouble);
    }
  }
  return count;
}

/** Webhooks counted by the duration histogram in one export. */
function durationCount(metrics: Metric[]): number {
  const histogram = metrics.find((m) => m.name === DURATION_METRIC);
  return (histogram?.histogram?.dataPoints ?? []).reduce((total, point) => total + Number(point.count), 0);
}

async function until(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

Deno.test("OTEL_DENO=true: a span per webhook with its outcome, a counter by outcome, a duration histogram", async () => {
  const db = await createTestDatabase();
  const receiver = startReceiver();
  const setup = connectPostgres(db.url, { max: 1, connectTimeoutMs: 5_000, prepare: true });
  await migrate(setup);
  const key = `otel-key-${crypto.randomUUID()}`;
  const child = spawn(["run", ...START_PERMISSIONS, "main.ts"], {
    env: {
      DATABASE_URL: db.url,
      MAILGUN_WEBHOOK_SIGNING_KEY: key,
      PORT: "0",
      LISTEN_HOST: "127.0.0.1",
      DB_POOL_MAX: String(db.poolMax),
      BATCH_IN_FLIGHT: "1",
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_METRIC_EXPORT_INTERVAL: "200",
      OTEL_SERVICE_NAME: "comprobify-mailgun-webhook-test",
    },
  });
  try {
    const url = JSON.parse(await child.waitFor((line) => line.includes('"msg":"listening"'))).url as string;
    const messageId = newMessageId();
    await setup`insert into documents (email_message_id, email_status) values (${messageId}, 'SENT')`;
    const delivered = eventData("delivered", messageId);
    const applied = await post(url, (signedBody(key, delivered)).body);
    assert.equal(applied.status, 200);
    // No row has this message id: `unmatched`, a 200 like `applied`, so its share is one counter's ratio.
    const unmatched = await post(url, (signedBody(key, eventData("delivered", newMessageId()))).body);
    assert.deepEqual(unmatched.json, { ok: true, outcome: "unmatched" });
    for (let i = 0; i < 2; i++) {
      const refused = await post(url, (signedBody("a-rotated-key", eventData("delivered", messageId))).body);
      assert.equal(refused.status, 401);
    }

    // Exports come every 200 ms and may fall between two requests: wait for one that holds all four.
    let complete: Metric[] | undefined;
    await until(() => {
      complete = receiver.exports.find((metrics) =>
        requestCount(metrics, "unauthorized") === 2 && requestCount(metrics, "applied") === 1 &&
        requestCount(metrics, "unmatched") === 1 && durationCount(metrics) === 4
      );
      return complete !== undefined;
    }, "a metrics export with the four webhooks");
    const counter = complete!.find((m) => m.name === REQUESTS_METRIC)!;
    const statuses = counter.sum!.dataPoints.map((
      p,
    ) => [attribute(p.attributes, "outcome"), attribute(p.attributes, "status")]);
    assert.deepEqual(new Set(statuses.map(String)), new Set(["applied,200", "unmatched,200", "unauthorized,401"]));
    // The share of unmatched among the 200s (docs/deploy.md gives the query): here 1 of 2.
    const answered = requestCount(complete!, "applied") + requestCount(complete!, "unmatched");
    assert.equal(requestCount(complete!, "unmatched") / answered, 0.5);
    const histogram = complete!.find((m) => m.name === DURATION_METRIC)!;
    assert.equal(histogram.unit, "ms");

    await until(() => receiver.spans.filter((s) => attribute(s.attributes, OUTCOME_ATTRIBUTE)).length >= 4, "spans");
    const webhookSpans = receiver.spans.filter((s) => attribute(s.attributes, OUTCOME_ATTRIBUTE) !== undefined);
    assert.deepEqual(webhookSpans.map((s) => attribute(s.attributes, OUTCOME_ATTRIBUTE)).sort(), [
      "applied",
      "unauthorized",
      "unauthorized",
      "unmatched",
    ]);
    const appliedSpan = webhookSpans.find((s) => attribute(s.attributes, OUTCOME_ATTRIBUTE) === "applied")!;
    // It is Deno.serve's own server span, named after the route.
    assert.equal(appliedSpan.name, "POST /v1/mailgun/webhook");
    assert.equal(appliedSpan.kind, 2);
    assert.equal(attribute(appliedSpan.attributes, "http.route"), "/v1/mailgun/webhook");
    assert.equal(attribute(appliedSpan.attributes, "mailgun.event"), "delivered");
    assert.equal(attribute(appliedSpan.attributes, "mailgun.message_id"), messageId.slice(1, -1));
    assert.equal(Number(attribute(appliedSpan.attributes, "http.response.status_code")), 200);

    // Log lines go through console: each is one log record, on the request's trace.
    const webhookLine = (record: LogRecord) => record.body?.stringValue?.includes('"msg":"webhook"') ?? false;
    await until(() => receiver.logs.filter(webhookLine).length >= 4, "the webhook log lines as log records");
    const appliedLine = receiver.logs.find((record) =>
      webhookLine(record) && record.body!.stringValue!.includes('"outcome":"applied"')
    )!;
    const parsed = JSON.parse(appliedLine.body!.stringValue!.trim());
    assert.equal(parsed.status, 200);
    // The line names the message (never the person), to trace an outcome to the ids it concerned.
    assert.equal(parsed.message_id, messageId.slice(1, -1));
    assert.equal(appliedLine.severityText, "INFO");
    assert.ok(appliedLine.traceId, "the log record is linked to the request's trace");
    // A refused webhook is a warning (console.warn), not INFO: Deploy and OpenTelemetry can filter on it.
    const refusedLines = receiver.logs.filter((record) =>
      webhookLine(record) && record.body!.stringValue!.includes('"outcome":"unauthorized"')
    );
    assert.equal(refusedLines.length, 2);
    for (const record of refusedLines) {
      assert.equal(record.severityText, "WARN");
      assert.equal(record.severityNumber, 13);
    }
    assert.ok(receiver.logs.some((record) => record.body?.stringValue?.includes('"msg":"listening"')));
    const exported = JSON.stringify({ metrics: receiver.exports, spans: receiver.spans, logs: receiver.logs });
    assert.ok(!exported.includes(key), "the signing key is never exported");
    assert.ok(!exported.includes(String(delivered.recipient)), "a recipient address is never exported");
  } catch (error) {
    await failWithStderr(child, error);
  } finally {
    signalChild(child, "SIGTERM");
    await child.process.status;
    await setup.end();
    await receiver.close();
    await db.drop();
  }
});
