/**
 * Realistic Mailgun traffic for many documents and tenants, with the end
 * state it must produce worked out independently of the service's code: the
 * expected status of a row is a function of the SET of its events, so it is
 * the same whatever order (and however often) they arrive.
 */
import type { Sql } from "postgres";
import { eventData, type Kind } from "../helpers/mailgun.ts";
import { seededRandom, shuffle } from "../helpers/seeded_random.ts";

export { seededRandom, shuffle };

/** The life of one message, as Mailgun reports it. */
export type PlanName =
  | "delivered"
  | "temporary-then-delivered"
  | "delivered-then-complained"
  | "permanent"
  | "delivered-then-delayed-bounce";

/** Every plan, in the order they are dealt to messages. */
export const PLAN_NAMES: readonly PlanName[] = [
  "delivered",
  "temporary-then-delivered",
  "delivered-then-complained",
  "permanent",
  "delivered-then-delayed-bounce",
];

/** A status, written here independently of the service's own ladder. */
type Status = "SENT" | "DELIVERED" | "FAILED" | "COMPLAINED";
const RANK: Record<Status, number> = { SENT: 1, DELIVERED: 2, FAILED: 3, COMPLAINED: 4 };

/** One Mailgun event to deliver, and what it must do. */
export interface PlannedEvent {
  /** Unique in a run: Mailgun's event id. */
  id: string;
  /** Seconds with a fraction (Mailgun's event timestamp). */
  timestamp: number;
  data: Record<string, unknown>;
  /** The trail entry it must leave on each matched row; null for ignored events (opened, clicked). */
  type: "EMAIL_DELIVERED" | "EMAIL_FAILED" | "EMAIL_TEMP_FAILED" | "EMAIL_COMPLAINED" | null;
  /** The status it climbs to; null leaves the status as it is. */
  status: Status | null;
}

/** A row the plan writes to. */
export interface PlannedRow {
  table: "documents" | "tenants";
  /** Set by {@link insertRows}. */
  id: number;
}

/** One sent message: where it is stored, and its events. */
export interface PlannedMessage {
  /** As the API stored it: with angle brackets (the send API's form) or bare. */
  storedMessageId: string;
  plan: PlanName;
  rows: PlannedRow[];
  events: PlannedEvent[];
}

/** Traffic for a run. */
export interface TrafficPlan {
  messages: PlannedMessage[];
  /** Every event, shuffled: the order in which the sender first tries them. */
  events: PlannedEvent[];
}

/** How much traffic, and of what shape. */
export interface PlanOptions {
  messages: number;
  random: () => number;
  /** Share of messages stored on a tenant rather than a document (verification emails). */
  tenantShare?: number;
  /** Share of messages stored on both a document and a tenant. */
  sharedShare?: number;
}

const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** Plans messages with their events, dealt round the plans, plus opened and clicked events that must be ignored. */
export function planTraffic(options: PlanOptions): TrafficPlan {
  const { random } = options;
  const tenantShare = options.tenantShare ?? 0.25;
  const sharedShare = options.sharedShare ?? 0.03;
  const eventId = () => Array.from({ length: 22 }, () => ID_ALPHABET[Math.floor(random() * 64)]).join("");
  const now = Date.now() / 1000;
  const messages: PlannedMessage[] = [];
  for (let m = 0; m < options.messages; m++) {
    const bare = `${Math.floor(now * 1000)}.${m}.${eventId().toLowerCase()}@mg.comprobify.test`;
    const storedMessageId = random() < 0.5 ? `<${bare}>` : bare;
    const placement = random();
    const rows: PlannedRow[] = placement < sharedShare
      ? [{ table: "documents", id: 0 }, { table: "tenants", id: 0 }]
      : placement < sharedShare + tenantShare
      ? [{ table: "tenants", id: 0 }]
      : [{ table: "documents", id: 0 }];
    const plan = PLAN_NAMES[m % PLAN_NAMES.length];
    // Sent within the last few hours; events follow in Mailgun's order, seconds to an hour apart.
    let clock = now - 6 * 3600 + random() * 3600;
    const events: PlannedEvent[] = [];
    const add = (kind: Kind | "clicked", overrides: Record<string, unknown> = {}) => {
      clock += 1 + Math.floor(random() * 600) + random();
      const id = eventId();
      const timestamp = Math.round(clock * 1e6) / 1e6;
      const base = kind === "clicked" ? "opened" : kind;
      const data = eventData(base, bare, { id, timestamp, ...overrides });
      if (kind === "clicked") data.event = "clicked";
      const effect = EFFECTS[kind];
      events.push({ id, timestamp, data, type: effect.type, status: effect.status });
    };
    switch (plan) {
      case "delivered":
        add("delivered");
        break;
      case "temporary-then-delivered":
        for (let i = 1 + Math.floor(random() * 3); i > 0; i--) add("temporary");
        add("delivered");
        break;
      case "delivered-then-complained":
        add("delivered");
        add("complained");
        break;
      case "permanent":
        // Half of them are Mailgun's final give-up after hours of temporary failures.
        if (random() < 0.5) {
          add("temporary");
          add("permanent", { reason: "old" });
        } else {
          add("permanent");
        }
        break;
      case "delivered-then-delayed-bounce":
        add("delivered");
        add("delayed-bounce");
        break;
    }
    if (plan !== "permanent") {
      for (let i = Math.floor(random() * 3); i > 0; i--) add(random() < 0.6 ? "opened" : "clicked");
    }
    messages.push({ storedMessageId, plan, rows, events });
  }
  const events = shuffle(messages.flatMap((message) => message.events), random);
  return { messages, events };
}

const EFFECTS: Record<Kind | "clicked", Pick<PlannedEvent, "type" | "status">> = {
  "delivered": { type: "EMAIL_DELIVERED", status: "DELIVERED" },
  "temporary": { type: "EMAIL_TEMP_FAILED", status: null },
  "permanent": { type: "EMAIL_FAILED", status: "FAILED" },
  "delayed-bounce": { type: "EMAIL_FAILED", status: "FAILED" },
  "complained": { type: "EMAIL_COMPLAINED", status: "COMPLAINED" },
  "opened": { type: null, status: null },
  "clicked": { type: null, status: null },
};

/** What each plan must end at: a second, plan-level oracle beside the set-based one. */
const PLAN_END: Record<PlanName, Status> = {
  "delivered": "DELIVERED",
  "temporary-then-delivered": "DELIVERED",
  "delivered-then-complained": "COMPLAINED",
  "permanent": "FAILED",
  "delivered-then-delayed-bounce": "FAILED",
};

/** The order-independent end state of a message's rows: the highest status, set by its earliest event. */
export function expectedState(message: PlannedMessage): { status: Status; statusAt: number | null } {
  let status: Status = "SENT";
  let statusAt: number | null = null;
  for (const event of message.events) {
    if (event.status === null) continue;
    if (RANK[event.status] > RANK[status] || (event.status === status && event.timestamp < statusAt!)) {
      status = event.status;
      statusAt = event.timestamp;
    }
  }
  if (status !== PLAN_END[message.plan]) {
    throw new Error(`Plan ${message.plan} ends at ${status}, not ${PLAN_END[message.plan]}`);
  }
  return { status, statusAt };
}

/** Inserts every planned row as the API does (message id and SENT only) and records its id. */
export async function insertRows(sql: Sql, plan: TrafficPlan): Promise<void> {
  for (const table of ["documents", "tenants"] as const) {
    const rows = plan.messages.flatMap((message) =>
      message.rows.filter((row) => row.table === table).map((row) => ({ row, messageId: message.storedMessageId }))
    );
    for (let i = 0; i < rows.length; i += 1000) {
      const chunk = rows.slice(i, i + 1000);
      const ids = chunk.map((entry) => entry.messageId);
      const inserted = table === "documents"
        ? await sql`insert into documents (email_message_id, email_status)
                    select m, 'SENT' from unnest(${ids}::text[]) with ordinality as u(m, n) order by n returning id`
        : await sql`insert into tenants (email_message_id, email_status)
                    select m, 'SENT' from unnest(${ids}::text[]) with ordinality as u(m, n) order by n returning id`;
      // Identity values follow the insertion order of one statement.
      const sorted = inserted.map((row) => Number(row.id)).sort((a, b) => a - b);
      chunk.forEach((entry, j) => entry.row.id = sorted[j]);
    }
  }
}

/** The row-by-row verdict. */
export interface EndStateReport {
  rows: number;
  rowsCorrect: number;
  /** Trail entries that must exist. */
  expectedEntries: number;
  /** Trail entries found. */
  foundEntries: number;
  /** Expected entries not found. */
  missing: number;
  /** Entries for one (row, event) found more than once. */
  duplicated: number;
  /** Entries that match no planned event of the row (including ignored events). */
  unexpected: number;
  /** Rows whose status or status time is not the order-independent result. */
  wrongStatus: number;
  /** The first few problems, to show. */
  problems: string[];
}

/** Tolerance when comparing times stored as timestamptz (microseconds) with the float Mailgun sent. */
const TIME_TOLERANCE_SECONDS = 2e-5;

/** Checks every planned row: its trail holds each of its events exactly once, and its status is the expected one. */
export async function checkEndState(sql: Sql, plan: TrafficPlan): Promise<EndStateReport> {
  const entries = await sql`
    select document_id, tenant_id, mailgun_event_id, type,
           extract(epoch from event_timestamp)::float8 as ts
    from email_events
  `;
  const byRow = new Map<string, { id: string; type: string; ts: number }[]>();
  for (const entry of entries) {
    const key = entry.document_id !== null ? `documents:${entry.document_id}` : `tenants:${entry.tenant_id}`;
    const list = byRow.get(key) ?? [];
    list.push({ id: entry.mailgun_event_id, type: entry.type, ts: entry.ts });
    byRow.set(key, list);
  }
  const statuses = new Map<string, { status: string; at: number | null }>();
  for (const table of ["documents", "tenants"] as const) {
    const rows = table === "documents"
      ? await sql`select id, email_status, extract(epoch from email_status_at)::float8 as at from documents`
      : await sql`select id, email_status, extract(epoch from email_status_at)::float8 as at from tenants`;
    for (const row of rows) statuses.set(`${table}:${row.id}`, { status: row.email_status, at: row.at });
  }
  const report: EndStateReport = {
    rows: 0,
    rowsCorrect: 0,
    expectedEntries: 0,
    foundEntries: entries.length,
    missing: 0,
    duplicated: 0,
    unexpected: 0,
    wrongStatus: 0,
    problems: [],
  };
  const problem = (text: string) => {
    if (report.problems.length < 20) report.problems.push(text);
  };
  const seen = new Set<string>();
  for (const message of plan.messages) {
    const expected = expectedState(message);
    const tracked = message.events.filter((event) => event.type !== null);
    for (const row of message.rows) {
      const key = `${row.table}:${row.id}`;
      seen.add(key);
      report.rows++;
      report.expectedEntries += tracked.length;
      let correct = true;
      const found = byRow.get(key) ?? [];
      for (const event of tracked) {
        const matches = found.filter((entry) =>
          entry.id === event.id && entry.type === event.type &&
          Math.abs(entry.ts - event.timestamp) < TIME_TOLERANCE_SECONDS
        );
        if (matches.length === 0) {
          report.missing++;
          correct = false;
          problem(`${key}: ${event.type} ${event.id} missing`);
        } else if (matches.length > 1) {
          report.duplicated += matches.length - 1;
          correct = false;
          problem(`${key}: ${event.type} ${event.id} recorded ${matches.length} times`);
        }
      }
      const extra = found.filter((entry) => !tracked.some((event) => event.id === entry.id)).length;
      if (extra > 0) {
        report.unexpected += extra;
        correct = false;
        problem(`${key}: ${extra} unexpected trail entries`);
      }
      const actual = statuses.get(key);
      const atOk = expected.statusAt === null ? actual?.at === null : actual?.at !== null && actual?.at !== undefined &&
        Math.abs(actual.at - expected.statusAt) < TIME_TOLERANCE_SECONDS;
      if (actual?.status !== expected.status || !atOk) {
        report.wrongStatus++;
        correct = false;
        problem(
          `${key} (${message.plan}): ${actual?.status} at ${actual?.at}, expected ${expected.status} at ${expected.statusAt}`,
        );
      }
      if (correct) report.rowsCorrect++;
    }
  }
  for (const key of byRow.keys()) {
    if (!seen.has(key)) {
      report.unexpected += byRow.get(key)!.length;
      problem(`${key}: trail entries on a row the plan never targeted`);
    }
  }
  return report;
}
