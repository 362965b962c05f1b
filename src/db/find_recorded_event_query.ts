import type { Sql } from "postgres";

/**
 * Whether the trail already holds the event `eventId` of the UTC day of
 * `timestampSeconds` for every one of these documents and tenants: the
 * trail's key (row, event id, day), read without writing (for a dry run).
 * An event without an id is keyed as the webhook statement keys it, by the
 * hash of `eventData`'s jsonb form.
 */
export async function isEventRecorded(
  sql: Sql,
  eventId: string | null,
  eventData: string,
  timestampSeconds: number,
  rows: { documentIds: number[]; tenantIds: number[] },
): Promise<boolean> {
  const [row] = await sql`
    select count(*)::int as recorded
    from email_events
    where mailgun_event_id = coalesce(
            ${eventId}::text, 'sha256:' || encode(mailgun_webhook.body_hash(${eventData}::text::jsonb), 'hex'))
      and (event_timestamp at time zone 'UTC')::date = (to_timestamp(${timestampSeconds}) at time zone 'UTC')::date
      and (document_id in (select jsonb_array_elements_text(${JSON.stringify(rows.documentIds)}::text::jsonb)::bigint)
           or tenant_id in (select jsonb_array_elements_text(${JSON.stringify(rows.tenantIds)}::text::jsonb)::bigint))
  `;
  return row.recorded >= rows.documentIds.length + rows.tenantIds.length;
}
