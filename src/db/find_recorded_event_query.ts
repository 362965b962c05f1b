import type { Sql } from "postgres";

/**
 * Whether the trail already holds the event `eventId` of the UTC day of
 * `timestampSeconds` for every one of these documents and tenants: the
 * trail's key (row, event id, day), read without writing (for a dry run).
 * Keys as text, read by the database as the trail's key type (bigint,
 * integer or uuid).
 * An event without an id is keyed as the webhook statement keys it, by the
 * hash of `eventData`'s jsonb form.
 */
export async function isEventRecorded(
  sql: Sql,
  eventId: string | null,
  eventData: string,
  timestampSeconds: number,
  rows: { documentIds: string[]; tenantIds: string[] },
): Promise<boolean> {
  const [row] = await sql`
    select count(*)::int as recorded
    from email_events
    where mailgun_event_id = coalesce(
            ${eventId}::text, 'sha256:' || encode(mailgun_webhook.body_hash(${eventData}::text::jsonb), 'hex'))
      and (event_timestamp at time zone 'UTC')::date = (to_timestamp(${timestampSeconds}) at time zone 'UTC')::date
      and (document_id = any(${rows.documentIds}) or tenant_id = any(${rows.tenantIds}))
  `;
  return row.recorded >= rows.documentIds.length + rows.tenantIds.length;
}
