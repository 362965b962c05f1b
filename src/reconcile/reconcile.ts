import type { Sql } from "postgres";
import { applyEvent } from "../apply/apply_event.ts";
import { type BatchWriter, createBatchWriter } from "../batch_writer/batch_writer.ts";
import { DEFAULT_BATCH_QUEUE_MAX, DEFAULT_DB_LOCK_TIMEOUT_MS } from "../config/service_config.ts";
import { DataRefusedError } from "../db/database_errors.ts";
import { findUnsettledRows, type UnsettledRow } from "../db/find_unsettled_rows_query.ts";
import { sha256Hex } from "../encoding/sha256_hex.ts";
import { UnusableEventError } from "../mailgun/mailgun_errors.ts";
import { bareMessageId, parseEventData } from "../mailgun/parse_event_data.ts";
import { MailgunApiError, type MailgunEventsClient } from "./mailgun_events_client.ts";
import { messageSentAt } from "./message_sent_at.ts";

/** Events may be stamped a little before the send time Mailgun put in the Message-ID. */
const CLOCK_MARGIN_MS = 5 * 60 * 1000;

/** Which rows to ask about. */
export interface ReconcileOptions {
  /** Rows sent more recently are left to the webhook. */
  minAgeMs: number;
  /** Rows sent longer ago are past Mailgun's retention. */
  maxAgeMs: number;
  /** Most rows looked at. */
  limit: number;
  /** Bound on one database statement. */
  queryTimeoutMs?: number;
}

/** What a run did. */
export interface ReconcileSummary {
  /** Rows whose message ids were asked about. */
  rowsChecked: number;
  /** Distinct message ids asked about. */
  messageIds: number;
  /** Rows sent less than the minimum age ago, left alone. */
  tooRecent: number;
  /** Rows sent longer ago than the maximum age, left alone. */
  tooOld: number;
  /** True when the limit cut the list of rows short. */
  limited: boolean;
  eventsFound: number;
  /** Events that added a trail entry (and maybe moved a status). */
  applied: number;
  /** Events already in the trail (by webhook or an earlier run): skipped. */
  duplicates: number;
  /** Events whose message id no longer matched a row. */
  unmatched: number;
  /** Events of a kind this service ignores. */
  ignored: number;
  /** Events Mailgun answered that can never be used. */
  unusable: number;
  /** Message ids Mailgun has no events for. */
  unknownToMailgun: number;
  /** Message ids whose lookup failed (the run exits non-zero). */
  failed: number;
}

/**
 * Finds the rows whose final event may never have arrived, asks Mailgun for
 * the events of their message ids, and applies each one exactly as the
 * webhook does (parseEventData, then applyEvent in one statement), under a
 * token derived from the event itself. So a re-run, or an event that also
 * came by webhook, is recognised by the trail's key and never applied twice.
 * Stops at the first fatal error (wrong API key, database down).
 */
export async function reconcile(
  sql: Sql,
  mailgun: MailgunEventsClient,
  options: ReconcileOptions,
  report: (line: string) => void = () => {},
): Promise<ReconcileSummary> {
  const summary: ReconcileSummary = {
    rowsChecked: 0,
    messageIds: 0,
    tooRecent: 0,
    tooOld: 0,
    limited: false,
    eventsFound: 0,
    applied: 0,
    duplicates: 0,
    unmatched: 0,
    ignored: 0,
    unusable: 0,
    unknownToMailgun: 0,
    failed: 0,
  };
  const now = new Date();
  const rows = await findUnsettledRows(sql, options.limit);
  summary.limited = rows.length === options.limit;
  const byMessage = new Map<string, { rows: UnsettledRow[]; sentAt?: Date }>();
  for (const row of rows) {
    const sentAt = messageSentAt(row.messageId);
    const age = sentAt === undefined ? undefined : now.getTime() - sentAt.getTime();
    if (age !== undefined && age < options.minAgeMs) {
      summary.tooRecent++;
      continue;
    }
    if (age !== undefined && age > options.maxAgeMs) {
      summary.tooOld++;
      continue;
    }
    summary.rowsChecked++;
    const key = bareMessageId(row.messageId);
    const group = byMessage.get(key) ?? { rows: [], sentAt };
    group.rows.push(row);
    byMessage.set(key, group);
  }
  summary.messageIds = byMessage.size;
  const writer = createBatchWriter(sql, {
    maxBatch: 64,
    maxInFlight: 1,
    queryTimeoutMs: options.queryTimeoutMs ?? 10_000,
    lockTimeoutMs: DEFAULT_DB_LOCK_TIMEOUT_MS,
    // A tool has no caller that gives up: the statement timeout alone bounds it.
    deadlineMs: 10 * (options.queryTimeoutMs ?? 10_000),
    maxQueued: DEFAULT_BATCH_QUEUE_MAX,
  });
  try {
    for (const [messageId, group] of byMessage) {
      const oldest = now.getTime() - options.maxAgeMs;
      const begin = new Date(Math.max(oldest, (group.sentAt?.getTime() ?? oldest) - CLOCK_MARGIN_MS));
      const counts = { found: 0, applied: 0, duplicates: 0, other: 0 };
      const label = `${messageId} (${group.rows.map((row) => `${row.table} ${row.id}`).join(", ")})`;
      try {
        for await (const item of mailgun.eventsFor(messageId, begin, now)) {
          counts.found++;
          summary.eventsFound++;
          const outcome = await applyOne(writer, item);
          summary[outcome]++;
          if (outcome === "applied") counts.applied++;
          else if (outcome === "duplicates") counts.duplicates++;
          else counts.other++;
        }
      } catch (error) {
        if (!(error instanceof MailgunApiError) || error.fatal) throw error;
        summary.failed++;
        report(`  ${label}: FAILED, ${error.message}`);
        continue;
      }
      if (counts.found === 0) {
        summary.unknownToMailgun++;
        report(`  ${label}: Mailgun has no events for it`);
        continue;
      }
      const parts = [`${counts.applied} applied`, `${counts.duplicates} already recorded`];
      if (counts.other > 0) parts.push(`${counts.other} not applicable`);
      report(`  ${label}: ${counts.found} event${counts.found === 1 ? "" : "s"}, ${parts.join(", ")}`);
    }
  } finally {
    await writer.drain();
  }
  return summary;
}

async function applyOne(
  writer: BatchWriter,
  item: Record<string, unknown>,
): Promise<"applied" | "duplicates" | "unmatched" | "ignored" | "unusable"> {
  try {
    const parsed = parseEventData(item);
    // Deterministic: the same event always brings the same token, bound to the same body.
    const token = `reconcile-${sha256Hex(parsed.json)}`;
    const { outcome } = await applyEvent(writer, parsed, { token, signedAt: Math.floor(Date.now() / 1000) });
    return outcome === "duplicate" ? "duplicates" : outcome;
  } catch (error) {
    if (error instanceof UnusableEventError || error instanceof DataRefusedError) return "unusable";
    throw error;
  }
}
