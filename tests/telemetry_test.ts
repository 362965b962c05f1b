/**
 * Telemetry as Deno exports it: the service runs as `deno task start` would
 * (a child process, the start task's permissions) with OTEL_DENO=true, and
 * exports OTLP/HTTP JSON to a receiver served by this test.
 */
import assert from "node:assert/strict";
import { connectPostgres } from "../src/db/connect_postgres.ts";
import { migrate } from "../src/db/migrate.ts";
import { DURATION_METRIC, OUTCOME_ATTRIBUTE, REQUESTS_METRIC } from "../src/telemetry.ts";
import { eventData, post, signedBody } from "./helpers/mailgun.ts";
import { failWithStderr, signalChild, spawn, START_PERMISSIONS } from "./helpers/subprocess.ts";
import { createTestDatabase } from "./helpers/test_database.ts";
import { newMessageId } from "./helpers/test_service.ts";

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
interface Span {
  name: string;
  kind: number;
  attributes: Attributes;
}

/** An OTLP/HTTP receiver that keeps what it is sent, by signal. */
function startReceiver() {
  const metrics: Metric[] = [];
  const spans: Span[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const path = new URL(request.url).pathname;
    const body = await request.json();
    if (path === "/v1/metrics") {
      for (const resource of body.resourceMetrics ?? []) {
        for (const scope of resource.scopeMetrics ?? []) metrics.push(...scope.metrics);
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
    metrics,
    spans,
    close: () => server.shutdown(),
  };
}

function attribute(attributes: Attributes, key: string): unknown {
  const value = attributes.find((a) => a.key === key)?.value;
  return value === undefined ? undefined : Object.values(value)[0];
}

/** The latest cumulative count of webhooks with this outcome. */
function requestCount(metrics: Metric[], outcome: string): number {
  let count = 0;
  for (const metric of metrics.filter((m) => m.name === REQUESTS_METRIC)) {
    for (const point of metric.sum?.dataPoints ?? []) {
      if (attribute(point.attributes, "outcome") === outcome) count = Number(point.asInt ?? point.asDouble);
    }
  }
  return count;
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
      HOSTNAME: "127.0.0.1",
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
    const applied = await post(url, (await signedBody(key, eventData("delivered", messageId))).body);
    assert.equal(applied.status, 200);
    for (let i = 0; i < 2; i++) {
      const refused = await post(url, (await signedBody("a-rotated-key", eventData("delivered", messageId))).body);
      assert.equal(refused.status, 401);
    }

    await until(() => requestCount(receiver.metrics, "unauthorized") === 2, "the webhook counter");
    assert.equal(requestCount(receiver.metrics, "applied"), 1);
    const counter = receiver.metrics.find((m) => m.name === REQUESTS_METRIC)!;
    const statuses = counter.sum!.dataPoints.map((
      p,
    ) => [attribute(p.attributes, "outcome"), attribute(p.attributes, "status")]);
    assert.deepEqual(new Set(statuses.map(String)), new Set(["applied,200", "unauthorized,401"]));
    const histogram = receiver.metrics.findLast((m) => m.name === DURATION_METRIC)!;
    assert.equal(histogram.unit, "ms");
    const durations = histogram.histogram!.dataPoints;
    assert.equal(durations.reduce((total, point) => total + Number(point.count), 0), 3);

    await until(() => receiver.spans.filter((s) => attribute(s.attributes, OUTCOME_ATTRIBUTE)).length >= 3, "spans");
    const webhookSpans = receiver.spans.filter((s) => attribute(s.attributes, OUTCOME_ATTRIBUTE) !== undefined);
    assert.deepEqual(webhookSpans.map((s) => attribute(s.attributes, OUTCOME_ATTRIBUTE)).sort(), [
      "applied",
      "unauthorized",
      "unauthorized",
    ]);
    const appliedSpan = webhookSpans.find((s) => attribute(s.attributes, OUTCOME_ATTRIBUTE) === "applied")!;
    // It is Deno.serve's own server span, named after the route.
    assert.equal(appliedSpan.name, "POST /v1/mailgun/webhook");
    assert.equal(appliedSpan.kind, 2);
    assert.equal(attribute(appliedSpan.attributes, "http.route"), "/v1/mailgun/webhook");
    assert.equal(attribute(appliedSpan.attributes, "mailgun.event"), "delivered");
    assert.equal(Number(attribute(appliedSpan.attributes, "http.response.status_code")), 200);
    const exported = JSON.stringify({ metrics: receiver.metrics, spans: receiver.spans });
    assert.ok(!exported.includes(key), "the signing key is never exported");
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
