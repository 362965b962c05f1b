import { logRecord } from "./log.ts";
import { recordWebhook } from "./telemetry.ts";
import type { WebhookReport } from "./webhook_report.ts";

/** Reports one handled webhook: one log line, and its telemetry. */
export function reportWebhook(report: WebhookReport, durationMs: number): void {
  logWebhook(report, durationMs);
  recordWebhook(report, durationMs);
}

/**
 * One line per webhook, at the severity of its status (200 info, 4xx warn,
 * 5xx error). Never the key, never a recipient address; the message id, to
 * trace a spike of `unmatched` to the ids that failed to match.
 */
function logWebhook(report: WebhookReport, durationMs: number): void {
  const level = report.status === 200 ? "info" : report.status >= 500 ? "error" : "warn";
  logRecord(level, {
    time: new Date().toISOString(),
    level,
    msg: "webhook",
    outcome: report.outcome,
    status: report.status,
    event_id: report.eventId,
    event: report.event,
    message_id: report.messageId,
    rows: report.rows,
    signing_key_index: report.keyIndex,
    parent_key: report.parentKey,
    reason: report.status === 200 ? undefined : report.message,
    error_code: report.cause?.code,
    error_message: report.cause?.message,
    hint: report.cause?.hint,
    bug: report.cause?.bug,
    stack: report.cause?.stack,
    duration_ms: Math.round(durationMs * 100) / 100,
  });
}
