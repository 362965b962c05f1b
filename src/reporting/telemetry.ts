/**
 * Webhook telemetry through Deno's built-in OpenTelemetry (`OTEL_DENO=true`,
 * collected by Deno Deploy by default). Deno registers its providers behind
 * `@opentelemetry/api`; with OpenTelemetry off, the API hands out no-op
 * instruments, so a webhook costs a few function calls more and nothing else.
 */
import { metrics, trace } from "@opentelemetry/api";
import { WEBHOOK_PATH } from "../config/routes.ts";
import type { WebhookReport } from "./webhook_report.ts";

/** The instrumentation scope: what a dashboard filters on. */
const TELEMETRY_SCOPE = "comprobify-mailgun-webhook";
/** Counter of webhooks, by `outcome` and `status`. */
export const REQUESTS_METRIC = "mailgun_webhook_requests";
/** Histogram of webhook durations in milliseconds, by `outcome`. */
export const DURATION_METRIC = "mailgun_webhook_duration";
/** The span attribute that carries the outcome. */
export const OUTCOME_ATTRIBUTE = "mailgun.webhook.outcome";

const meter = metrics.getMeter(TELEMETRY_SCOPE);
const tracer = trace.getTracer(TELEMETRY_SCOPE);
const requests = meter.createCounter(REQUESTS_METRIC, {
  description: "Mailgun webhooks handled, by outcome and HTTP status.",
});
const durations = meter.createHistogram(DURATION_METRIC, {
  description: "Time to answer a Mailgun webhook, from routing to the response.",
  unit: "ms",
});

/**
 * Records one handled webhook: its outcome on the request's span (Deno.serve's
 * server span, or a span of its own when there is none), one count, and its
 * duration. Never the key, never a recipient address.
 */
export function recordWebhook(report: WebhookReport, durationMs: number): void {
  const outcome = report.outcome;
  const status = String(report.status);
  requests.add(1, { outcome, status });
  durations.record(durationMs, { outcome });
  const active = trace.getActiveSpan();
  const span = active?.isRecording() ? active : tracer.startSpan("mailgun.webhook", {
    startTime: performance.timeOrigin + performance.now() - durationMs,
  });
  if (!span.isRecording()) return;
  span.setAttribute(OUTCOME_ATTRIBUTE, outcome);
  if (span === active) {
    // HTTP semantic conventions: a server span is named after its route.
    span.updateName(`POST ${WEBHOOK_PATH}`);
    span.setAttribute("http.route", WEBHOOK_PATH);
  }
  if (report.event !== undefined) span.setAttribute("mailgun.event", report.event);
  if (report.eventId !== undefined) span.setAttribute("mailgun.event_id", report.eventId);
  if (report.messageId !== undefined) span.setAttribute("mailgun.message_id", report.messageId);
  if (report.rows !== undefined) span.setAttribute("mailgun.webhook.rows", report.rows);
  if (report.keyIndex !== undefined) span.setAttribute("mailgun.webhook.signing_key_index", report.keyIndex);
  if (report.parentKey) span.setAttribute("mailgun.webhook.parent_key", true);
  if (span !== active) span.end();
}
