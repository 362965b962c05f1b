import type { PendingQuery, Row, Sql } from "postgres";

/** What one signed webhook writes: always its token and, when it carries a tracked event, the event. */
export type BatchRow = EventWrite | TokenWrite;

/** A token spent with the tracked event it carries: the event is recorded in the trail and applied. */
interface EventWrite {
  kind: "event";
  token: string;
  /** The signature timestamp, Unix seconds. */
  signedAt: number;
  event: StoredEvent;
}

/** A token spent alone (an ignored, unmatched or unusable event), bound to what it came with. */
export interface TokenWrite {
  kind: "token";
  token: string;
  /** The signature timestamp, Unix seconds. */
  signedAt: number;
  /**
   * The event-data, whose jsonb form the database hashes (webhook_body_hash);
   * or the SHA-256 hex of bytes the database could not read as event-data.
   */
  binding: { eventData: string } | { bodyHash: string };
}

/** A tracked event as the trail and the status columns take it. */
interface StoredEvent {
  /** The trail entry's type, e.g. EMAIL_DELIVERED. */
  type: string;
  /** The status to climb to; null leaves the status as it is. */
  status: string | null;
  /** Mailgun's event id; null when the event has none: the statement derives one from the jsonb (see writeBatch). */
  eventId: string | null;
  /** Unix seconds, with a fraction. */
  eventTimestamp: number;
  messageId: string;
  recipient: string | null;
  severity: string | null;
  reason: string | null;
  /** The event-data as JSON, checked storable. */
  eventData: string;
}

/** What the statement did for one {@link BatchRow}, in input order. */
export interface BatchRowResult {
  /** False when the token was already used with another body, or the signature is expired. */
  accepted: boolean;
  /**
   * True when the signature is older than the prune horizon (migration 0012):
   * its token may have been pruned, so nothing was written.
   */
  expired: boolean;
  /** Documents and tenants whose message id matched. */
  matched: number;
  /** Trail entries written (0 with matches means a re-delivery). */
  appended: number;
}

/**
 * Consumes the tokens and applies the events of a batch of webhooks in ONE
 * statement (one round trip, one transaction, one commit):
 * - a token is inserted once (keyed with the day slot of its signature,
 *   migration 0008); the same token again counts as accepted only
 *   with the same body hash, so a captured signature cannot carry another body;
 * - matched rows get one trail entry per (row, event id, UTC day of the
 *   event: migration 0008), so a re-delivery under any signature, or the
 *   same event read from the Logs API (milliseconds where webhooks give
 *   microseconds), appends nothing;
 * - a status only climbs the ladder; between events of the same rank the
 *   earliest wins, so the end state does not depend on arrival order.
 * - an event without an id is keyed by `sha256:` and the hex of
 *   mailgun_webhook.body_hash(event-data), the hash its token is bound to:
 *   key order and spacing cannot make it two events;
 * - the status is written through jsonb_populate_record, i.e. as input to the
 *   column's own type, so that an enum or a domain over text takes it (a plain
 *   text value would not be assigned to an enum); what the type refuses fails
 *   the statement (a host schema refusal, answered 503).
 * Tokens must be distinct within a batch (ON CONFLICT DO UPDATE touches a row once).
 *
 * Row lock waits (a document held `for update` by the API, another instance's
 * batch) end after `lockTimeoutMs` with 55P03 lock_not_available. It is set
 * inside the statement (`set_config(..., true)`, local to its transaction)
 * rather than as a startup parameter, which transaction-mode poolers refuse:
 * the uncorrelated subquery is an InitPlan, run before `input` yields its
 * first row, so before anything that could wait on a row. A table lock is
 * taken before the statement runs: that wait is bounded by the caller's
 * statement timeout instead.
 */
export function writeBatch(sql: Sql, rows: BatchRow[], lockTimeoutMs: number): PendingQuery<Row[]> {
  return sql`
    with input as (
      select *
      from jsonb_to_recordset(${batchJson(rows)}::text::jsonb) as i(
        n int, token text, body_hash text, signed_at float8, type text, status text, event_id text,
        event_ts float8, message_id text, recipient text, severity text, reason text, event_data jsonb
      )
      where (select set_config('lock_timeout', ${lockTimeoutMs + "ms"}, true)) is not null
    ),
    -- A signature older than the prune horizon (migration 0012) may have lost its token to any instance's
    -- pruning: expired, nothing written. One row, read once, in this statement's snapshot.
    horizon as (
      select pruned_before from mailgun_webhook.token_horizon
    ),
    consumed as (
      insert into mailgun_webhook.tokens as t (token, body_hash, signed_at, slot)
      select token, coalesce(decode(body_hash, 'hex'), mailgun_webhook.body_hash(event_data)), to_timestamp(signed_at),
             mailgun_webhook.token_slot(to_timestamp(signed_at))
      from input
      where to_timestamp(signed_at) >= (select pruned_before from horizon)
      on conflict (token, slot) do update set body_hash = t.body_hash
        where t.body_hash = excluded.body_hash
      returning t.token
    ),
    accepted as (
      select i.*, to_timestamp(i.event_ts) as event_at,
             coalesce(i.event_id, 'sha256:' || encode(mailgun_webhook.body_hash(i.event_data), 'hex')) as key_id
      from input i
      join consumed c on c.token = i.token
      where i.type is not null
    ),
    matched as (
      select a.n, d.id as document_id, null as tenant_id, a.type, a.status,
             a.key_id as event_id, a.event_at, a.recipient, a.severity, a.reason, a.event_data
      from accepted a
      join documents d on d.email_message_id in (a.message_id, '<' || a.message_id || '>')
      union all
      select a.n, null, t.id, a.type, a.status,
             a.key_id, a.event_at, a.recipient, a.severity, a.reason, a.event_data
      from accepted a
      join tenants t on t.email_message_id in (a.message_id, '<' || a.message_id || '>')
    ),
    appended as (
      insert into email_events
        (document_id, tenant_id, type, mailgun_event_id, event_timestamp, recipient, severity, reason, event_data)
      select document_id, tenant_id, type, event_id, event_at, recipient, severity, reason, event_data
      from matched
      on conflict do nothing
      returning document_id, tenant_id, mailgun_event_id, event_timestamp
    ),
    document_targets as (
      select distinct on (document_id) document_id, status, event_at, mailgun_webhook.status_rank(status) as rank
      from matched
      where document_id is not null and status is not null
      order by document_id, mailgun_webhook.status_rank(status) desc, event_at
    ),
    document_updates as (
      update documents d
      set email_status = (jsonb_populate_record(d, jsonb_build_object('email_status', s.status))).email_status,
          email_status_at = case when mailgun_webhook.status_rank(d.email_status::text) = s.rank
                                 then least(d.email_status_at, s.event_at) else s.event_at end
      from document_targets s
      where d.id = s.document_id
        and (mailgun_webhook.status_rank(d.email_status::text) < s.rank
             or (mailgun_webhook.status_rank(d.email_status::text) = s.rank
                 and (d.email_status_at is null or d.email_status_at > s.event_at)))
      returning d.id
    ),
    tenant_targets as (
      select distinct on (tenant_id) tenant_id, status, event_at, mailgun_webhook.status_rank(status) as rank
      from matched
      where tenant_id is not null and status is not null
      order by tenant_id, mailgun_webhook.status_rank(status) desc, event_at
    ),
    tenant_updates as (
      update tenants t
      set email_status = (jsonb_populate_record(t, jsonb_build_object('email_status', s.status))).email_status,
          email_status_at = case when mailgun_webhook.status_rank(t.email_status::text) = s.rank
                                 then least(t.email_status_at, s.event_at) else s.event_at end
      from tenant_targets s
      where t.id = s.tenant_id
        and (mailgun_webhook.status_rank(t.email_status::text) < s.rank
             or (mailgun_webhook.status_rank(t.email_status::text) = s.rank
                 and (t.email_status_at is null or t.email_status_at > s.event_at)))
      returning t.id
    ),
    -- The update CTEs run whether or not they are read (PostgreSQL runs every
    -- data-modifying CTE to completion). Joins, not correlated subqueries: the
    -- planner's cost stays far below jit_above_cost (JIT compiling this
    -- statement took 0.7-1.3 s).
    matched_count as (
      select n, count(*)::int as matched from matched group by n
    ),
    -- Each entry counts for one webhook, the first: two copies of an event without an id (keys in
    -- another order) may share a batch, and the second is then a duplicate.
    appended_by as (
      select distinct on (p.document_id, p.tenant_id, p.mailgun_event_id, p.event_timestamp) m.n
      from matched m
      join appended p
        on p.mailgun_event_id = m.event_id and p.event_timestamp = m.event_at
       and p.document_id is not distinct from m.document_id
       and p.tenant_id is not distinct from m.tenant_id
      order by p.document_id, p.tenant_id, p.mailgun_event_id, p.event_timestamp, m.n
    ),
    appended_count as (
      select n, count(*)::int as appended from appended_by group by n
    )
    select i.n,
           c.token is not null as accepted,
           not coalesce(to_timestamp(i.signed_at) >= (select pruned_before from horizon), false) as expired,
           coalesce(mc.matched, 0) as matched,
           coalesce(ac.appended, 0) as appended
    from input i
    left join consumed c on c.token = i.token
    left join matched_count mc on mc.n = i.n
    left join appended_count ac on ac.n = i.n
    order by i.n
  `;
}

/**
 * The batch as ONE parameter, a JSON array of rows, which postgres.js sends
 * as it is (no per-value serialising, no arrays; see jsonText). Every value
 * is encoded with JSON.stringify; the event-data is JSON already (checked
 * storable) and goes in as is.
 */
function batchJson(rows: BatchRow[]): string {
  let json = "[";
  for (let n = 0; n < rows.length; n++) {
    const row = rows[n];
    json += (n === 0 ? "" : ",") + '{"n":' + n + ',"token":' + JSON.stringify(row.token) + ',"signed_at":' +
      row.signedAt;
    if (row.kind === "event") {
      const event = row.event;
      json += ',"type":' + JSON.stringify(event.type) + ',"status":' + jsonText(event.status) +
        ',"event_id":' + jsonText(event.eventId) + ',"event_ts":' + event.eventTimestamp +
        ',"message_id":' + JSON.stringify(event.messageId) + ',"recipient":' + jsonText(event.recipient) +
        ',"severity":' + jsonText(event.severity) + ',"reason":' + jsonText(event.reason) +
        ',"event_data":' + event.eventData + "}";
    } else if ("bodyHash" in row.binding) {
      json += ',"body_hash":' + JSON.stringify(row.binding.bodyHash) + "}";
    } else {
      json += ',"event_data":' + row.binding.eventData + "}";
    }
  }
  return json + "]";
}

/**
 * A string or null as JSON. The batch is sent as text and cast in SQL
 * (`::text::jsonb`): postgres.js would JSON.stringify a value it knows to be
 * jsonb, and, on a connection still fetching the server's types, sent arrays
 * as plain strings ("malformed array literal", answered 406: events lost).
 */
function jsonText(value: string | null): string {
  return value === null ? "null" : JSON.stringify(value);
}
