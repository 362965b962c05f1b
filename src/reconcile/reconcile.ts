import type { Sql } from "postgres";
import { applyEvent } from "../apply/apply_event.ts";
import { type BatchWriter, createBatchWriter } from "../batch_writer/batch_writer.ts";
import { DEFAULT_BATCH_QUEUE_MAX, DEFAULT_DB_LOCK_TIMEOUT_MS } from "../config/service_config.ts";
import { DataRefusedError } from "../db/database_errors.ts";
import { isEventRecorded } from "../db/find_recorded_event_query.ts";
import { findUnsettledRows, type UnsettledRow } from "../db/find_unsettled_rows_query.ts";
import { advanceReconcileWatermark, readReconcileWatermark } from "../db/reconcile_watermark_query.ts";
import { sha256Hex } from "../encoding/sha256_hex.ts";
import { UnusableEventError } from "../mailgun/mailgun_errors.ts";
import { bareMessageId, type ParsedEvent, parseEventData } from "../mailgun/parse_event_data.ts";
import type { MailgunEventSource } from "./mailgun_event_source.ts";
import { MailgunApiError } from "./reconcile_errors.ts";
import { messageSentAt } from "./message_sent_at.ts";

/** Events may be stamped a little before the send time Mailgun put in the Message-ID. */
const CLOCK_MARGIN_MS = 5 * 60 * 1000;

/**
 * How far back of the watermark each run reads again. Mailgun documents that
 * its events reach the store out of order and may be retrievable only some
 * time after they happened: its "Event Polling" guide (Events API) has a poller
 * trust only pages older than "the threshold age (e.g. half an hour)". The
 * Logs API documents no figure of its own; it serves the same events, so the
 * same half hour is kept for both.
 */
export const LATE_EVENTS_MARGIN_MS = 30 * 60 * 1000;

/** Unsettled rows read from the database per query. */
const ROWS_PAGE = 1000;

/** Which rows to look at, and whether to write. */
export interface ReconcileOptions {
  /** Rows sent more recently are left to the webhook. */
  minAgeMs: number;
  /** Rows sent longer ago are past Mailgun's retention. */
  maxAgeMs: number;
  /** Most rows held in memory and matched in one run (the bound on its memory). */
  limit: number;
  /** Bound on one database statement. */
  queryTimeoutMs?: number;
  /** Report what would be applied; write nothing (the watermark stays where it is). */
  dryRun?: boolean;
  /** Read the whole age window, whatever the watermark says (`--full`). */
  full?: boolean;
  /**
   * RECONCILE_RESCAN: a value other than the one recorded with the watermark
   * asks for one full rescan; a complete run records it.
   */
  rescanLabel?: string;
  /** Told after each page of Mailgun's events (a month of them can take many minutes). */
  onPage?: (progress: ReconcileProgress) => void;
}

/** How far a run has come, after a page of Mailgun's events. */
export interface ReconcileProgress {
  pages: number;
  rowsChecked: number;
  eventsScanned: number;
  eventsFound: number;
  applied: number;
  duplicates: number;
}

/** What a run did. */
export interface ReconcileSummary {
  /** Rows matched against Mailgun's events. */
  rowsChecked: number;
  /** Distinct message ids among them. */
  messageIds: number;
  /** Rows sent less than the minimum age ago, left alone. */
  tooRecent: number;
  /** Rows sent longer ago than the maximum age, left alone. */
  tooOld: number;
  /** True when the limit cut the list of rows short. */
  limited: boolean;
  /** The window read from Mailgun (undefined when there was nothing to look for). */
  window?: { begin: Date; end: Date };
  /** Why the whole age window was read rather than what is new since the watermark (undefined: it was not). */
  fullScan?: string;
  /** The watermark the run started from (undefined: none yet). */
  watermark?: Date;
  /** Where the run moved the watermark to (undefined: it stayed, see `heldBack`). */
  advancedTo?: Date;
  /** Why the watermark stayed: a dry run, a failed scan, or the row limit. */
  heldBack?: string;
  /** Events Mailgun answered for the window, of every message of the domain. */
  eventsScanned: number;
  /** Requests sent to Mailgun, retries included. */
  requests: number;
  /** Events of the rows checked. */
  eventsFound: number;
  /** Events that added a trail entry (in a dry run: that would). */
  applied: number;
  /** Events already in the trail (by webhook or an earlier run): skipped. */
  duplicates: number;
  /** Events whose message id no longer matched a row. */
  unmatched: number;
  /** Events of a kind this service ignores. */
  ignored: number;
  /** Events Mailgun answered that can never be used. */
  unusable: number;
  /** Message ids Mailgun has no events for in the window. */
  unknownToMailgun: number;
  /** Failed scans (the run exits non-zero; what was applied before stays). */
  failed: number;
}

interface MessageGroup {
  rows: UnsettledRow[];
  applied: number;
  duplicates: number;
  other: number;
}

/**
 * Finds the rows whose final event may never have arrived (at most
 * `limit`, held in memory), reads Mailgun's events page by page (one scan
 * for all rows, whatever their number), keeps the events of those rows, and
 * applies each one exactly as the webhook does (parseEventData, then
 * applyEvent in one statement) under a token derived from the event itself.
 * So a re-run, or an event that also came by webhook, is recognised by the
 * trail's key and never applied twice. Stops at the first fatal error (wrong
 * API key, database down).
 *
 * The window read is what is new: from the domain's watermark (migration
 * 0013) less LATE_EVENTS_MARGIN_MS, to now less the minimum age, never
 * further back than the maximum age. The whole age window is read on the
 * first run, with `full`, or for a new `rescanLabel`. A run that applied
 * everything it read, for every row due (not cut short by `limit`), moves
 * the watermark to the end of its window; a dry run never does.
 */
export async function reconcile(
  sql: Sql,
  mailgun: MailgunEventSource,
  options: ReconcileOptions,
  report: (line: string) => void = () => {},
): Promise<ReconcileSummary> {
  const summary: ReconcileSummary = {
    rowsChecked: 0,
    messageIds: 0,
    tooRecent: 0,
    tooOld: 0,
    limited: false,
    eventsScanned: 0,
    requests: 0,
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
  // Rows become due at their send time plus the minimum age, and their events
  // are stamped at most CLOCK_MARGIN_MS before it: a run reads no further
  // than now - minAgeMs, so that what rows due later need is read by later runs.
  const end = new Date(now.getTime() - options.minAgeMs);
  const { groups, oldestSentAt } = await collectRows(sql, now, options, summary);
  summary.messageIds = groups.size;
  const stored = await readReconcileWatermark(sql, mailgun.domain, mailgun.api);
  summary.watermark = stored?.scannedUntil;
  summary.fullScan = fullScanReason(options, stored?.rescanLabel, stored === undefined);

  const earliest = now.getTime() - options.maxAgeMs;
  let begin = summary.fullScan === undefined
    ? Math.max(earliest, stored!.scannedUntil.getTime() - LATE_EVENTS_MARGIN_MS)
    : earliest;
  // Unsettled rows choose which messages matter and may narrow the window; they never widen it.
  if (oldestSentAt !== undefined) begin = Math.max(begin, oldestSentAt - CLOCK_MARGIN_MS);
  if (groups.size > 0 && begin < end.getTime()) {
    await scanWindow(sql, mailgun, new Date(begin), end, groups, options, summary, report);
  }

  if (options.dryRun) summary.heldBack = "dry run";
  else if (summary.failed > 0) summary.heldBack = `Mailgun's ${mailgun.name} could not be read`;
  else if (summary.limited) summary.heldBack = "the row limit was reached";
  else {
    // Everything read was applied (an error would have thrown before this): the next run starts here.
    const label = summary.fullScan === undefined ? null : options.rescanLabel ?? null;
    await advanceReconcileWatermark(sql, mailgun.domain, mailgun.api, end, label);
    summary.advancedTo = end;
  }
  reportGroups(groups, summary, options.dryRun === true, report);
  return summary;
}

/** Why a run reads the whole age window; undefined when it reads from the watermark. */
function fullScanReason(options: ReconcileOptions, recordedLabel: string | null | undefined, first: boolean) {
  if (options.full) return "asked for (--full)";
  if (first) return "first run (no watermark yet)";
  if (options.rescanLabel !== undefined && options.rescanLabel !== recordedLabel) {
    return `RECONCILE_RESCAN is ${JSON.stringify(options.rescanLabel)}`;
  }
  return undefined;
}

/**
 * Reads Mailgun's events of [begin, end] page by page and applies (in a dry
 * run: looks up) those of the rows held. A scan that fails short of fatal is
 * counted in `summary.failed`; what was applied before stays.
 */
async function scanWindow(
  sql: Sql,
  mailgun: MailgunEventSource,
  begin: Date,
  end: Date,
  groups: Map<string, MessageGroup>,
  options: ReconcileOptions,
  summary: ReconcileSummary,
  report: (line: string) => void,
): Promise<void> {
  summary.window = { begin, end };
  const writer = options.dryRun ? undefined : createWriter(sql, options);
  const requestsBefore = mailgun.requests;
  let pages = 0;
  try {
    for await (const page of mailgun.scan(begin, end)) {
      summary.eventsScanned += page.length;
      for (const item of page) {
        const group = groups.get(itemMessageId(item));
        if (group === undefined) continue;
        summary.eventsFound++;
        const outcome = writer === undefined ? await wouldApply(sql, item, group) : await applyOne(writer, item);
        summary[outcome]++;
        if (outcome === "applied") group.applied++;
        else if (outcome === "duplicates") group.duplicates++;
        else group.other++;
      }
      options.onPage?.({
        pages: ++pages,
        rowsChecked: summary.rowsChecked,
        eventsScanned: summary.eventsScanned,
        eventsFound: summary.eventsFound,
        applied: summary.applied,
        duplicates: summary.duplicates,
      });
    }
  } catch (error) {
    if (!(error instanceof MailgunApiError) || error.fatal) throw error;
    summary.failed++;
    report(`  FAILED reading Mailgun's ${mailgun.name}: ${error.message}`);
  } finally {
    await writer?.drain();
    summary.requests = mailgun.requests - requestsBefore;
  }
}

/**
 * The unsettled rows sent inside the age window, by bare message id, read a
 * page at a time (rows outside the window are passed over, not kept), until
 * `limit` rows are held.
 */
async function collectRows(
  sql: Sql,
  now: Date,
  options: ReconcileOptions,
  summary: ReconcileSummary,
): Promise<{ groups: Map<string, MessageGroup>; oldestSentAt?: number }> {
  const groups = new Map<string, MessageGroup>();
  let oldestSentAt: number | undefined;
  let undated = false;
  rows: for (const table of ["documents", "tenants"] as const) {
    let afterId: string | null = null;
    while (true) {
      const page = await findUnsettledRows(sql, table, afterId, ROWS_PAGE);
      for (const row of page) {
        afterId = row.id;
        const sentAt = messageSentAt(row.messageId)?.getTime();
        const age = sentAt === undefined ? undefined : now.getTime() - sentAt;
        if (age !== undefined && age < options.minAgeMs) {
          summary.tooRecent++;
          continue;
        }
        if (age !== undefined && age > options.maxAgeMs) {
          summary.tooOld++;
          continue;
        }
        if (summary.rowsChecked >= options.limit) {
          summary.limited = true;
          break rows;
        }
        summary.rowsChecked++;
        if (sentAt === undefined) undated = true;
        else oldestSentAt = Math.min(oldestSentAt ?? sentAt, sentAt);
        const key = bareMessageId(row.messageId);
        const group = groups.get(key) ?? { rows: [], applied: 0, duplicates: 0, other: 0 };
        group.rows.push(row);
        groups.set(key, group);
      }
      if (page.length < ROWS_PAGE) break;
    }
  }
  // A row whose message id carries no send time is looked for over the whole retention.
  return { groups, oldestSentAt: undated ? undefined : oldestSentAt };
}

function createWriter(sql: Sql, options: ReconcileOptions): BatchWriter {
  return createBatchWriter(sql, {
    maxBatch: 64,
    maxInFlight: 1,
    queryTimeoutMs: options.queryTimeoutMs ?? 10_000,
    lockTimeoutMs: DEFAULT_DB_LOCK_TIMEOUT_MS,
    // A tool has no caller that gives up: the statement timeout alone bounds it.
    deadlineMs: 10 * (options.queryTimeoutMs ?? 10_000),
    maxQueued: DEFAULT_BATCH_QUEUE_MAX,
  });
}

function reportGroups(
  groups: Map<string, MessageGroup>,
  summary: ReconcileSummary,
  dryRun: boolean,
  report: (line: string) => void,
): void {
  for (const [messageId, group] of groups) {
    const label = `${messageId} (${group.rows.map((row) => `${row.table} ${row.id}`).join(", ")})`;
    const found = group.applied + group.duplicates + group.other;
    if (found === 0) {
      if (summary.failed === 0) {
        summary.unknownToMailgun++;
        report(`  ${label}: Mailgun has no events for it`);
      }
      continue;
    }
    const parts = [`${group.applied} ${dryRun ? "to apply" : "applied"}`, `${group.duplicates} already recorded`];
    if (group.other > 0) parts.push(`${group.other} not applicable`);
    report(`  ${label}: ${found} event${found === 1 ? "" : "s"}, ${parts.join(", ")}`);
  }
}

function itemMessageId(item: Record<string, unknown>): string {
  const headers = (item.message as { headers?: Record<string, unknown> } | undefined)?.headers;
  const value = headers?.["message-id"];
  return typeof value === "string" ? bareMessageId(value) : "";
}

type Outcome = "applied" | "duplicates" | "unmatched" | "ignored" | "unusable";

async function applyOne(writer: BatchWriter, item: Record<string, unknown>): Promise<Outcome> {
  const parsed = parse(item);
  if (parsed === undefined) return "unusable";
  try {
    // Deterministic: the same event always brings the same token, bound to the same body.
    const token = `reconcile-${sha256Hex(parsed.json)}`;
    const { outcome } = await applyEvent(writer, parsed, { token, signedAt: Math.floor(Date.now() / 1000) });
    return outcome === "duplicate" ? "duplicates" : outcome;
  } catch (error) {
    if (error instanceof DataRefusedError) return "unusable";
    throw error;
  }
}

/** The dry run's answer: what applyOne would do for the rows held, read from the trail. */
async function wouldApply(sql: Sql, item: Record<string, unknown>, group: MessageGroup): Promise<Outcome> {
  const parsed = parse(item);
  if (parsed === undefined) return "unusable";
  if (parsed.effect === null) return "ignored";
  const recorded = await isEventRecorded(sql, parsed.id, parsed.json, parsed.timestamp, {
    documentIds: group.rows.filter((row) => row.table === "documents").map((row) => row.id),
    tenantIds: group.rows.filter((row) => row.table === "tenants").map((row) => row.id),
  });
  return recorded ? "duplicates" : "applied";
}

function parse(item: Record<string, unknown>): ParsedEvent | undefined {
  try {
    return parseEventData(item);
  } catch (error) {
    if (error instanceof UnusableEventError) return undefined;
    throw error;
  }
}
