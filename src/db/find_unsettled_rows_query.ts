import type { Sql } from "postgres";

/** A document or tenant whose email may have events Mailgun never delivered to us. */
export interface UnsettledRow {
  table: "documents" | "tenants";
  id: number;
  /** As stored: with or without angle brackets. */
  messageId: string;
  status: string | null;
}

/**
 * Documents and tenants with a message id that are still `SENT` (or have no
 * status), or that have no event at all in the audit trail, at most `limit`
 * of them, oldest ids first.
 */
export async function findUnsettledRows(sql: Sql, limit: number): Promise<UnsettledRow[]> {
  const rows = await sql`
    select * from (
      select 'documents' as table_name, d.id, d.email_message_id, d.email_status
      from documents d
      where nullif(btrim(d.email_message_id, ' <>'), '') is not null
        and (d.email_status is null or d.email_status = 'SENT'
             or not exists (select 1 from email_events e where e.document_id = d.id))
      union all
      select 'tenants', t.id, t.email_message_id, t.email_status
      from tenants t
      where nullif(btrim(t.email_message_id, ' <>'), '') is not null
        and (t.email_status is null or t.email_status = 'SENT'
             or not exists (select 1 from email_events e where e.tenant_id = t.id))
    ) unsettled
    order by id, table_name
    limit ${limit}
  `;
  return rows.map((row) => ({
    table: row.table_name as "documents" | "tenants",
    id: Number(row.id),
    messageId: row.email_message_id as string,
    status: row.email_status as string | null,
  }));
}
