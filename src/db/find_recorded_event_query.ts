import type { Sql } from "postgres";

/**
 * Whether the trail already holds the event `eventId` of the UTC day of
 * `timestampSeconds` for every one of these documents and tenants: the
 * trail's key (row, event id, day), read without writing (for a dry run).
 */
export async function isEventRecorded(
  sql: Sql,
  eventId: string,
  timestampSeconds: number,
  rows: { documentIds: number[]; tenantIds: number[] },
): Promise<boolean> {
  const [row] = await sql`
    select count(*)::int as recorded
    from email_events
    where mailgun_event_id = ${eventId}
      and (event_timestamp at time zone 'UTC')::date = (to_timestamp(${timestampSeconds}) at time zone 'UTC')::date
      and (document_id in (select jsonb_array_elements_text(${JSON.stringify(rows.documentIds)}::text::jsonb)::bigint)
           or tenant_id in (select jsonb_array_elements_text(${JSON.stringify(rows.tenantIds)}::text::jsonb)::bigint))
  `;
  return row.recorded >= rows.documentIds.length + rows.tenantIds.length;
}
