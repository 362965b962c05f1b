import type { Sql } from "postgres";

/** A document or tenant whose email may have events Mailgun never delivered to us. */
export interface UnsettledRow {
  table: "documents" | "tenants";
  /**
   * The row's key as text: the API's keys are bigint, integer or uuid, and
   * a bigint may not fit a JavaScript number. Compared by the database, in
   * the key's own type.
   */
  id: string;
  /** As stored: with or without angle brackets. */
  messageId: string;
  status: string | null;
}

/**
 * One page of the documents or tenants with a message id whose email has no
 * final status yet (no status, `SENT`, or a status of the API's own outside
 * the ladder), keys above `afterId` (null: from the first) in the key's own
 * order, at most `limit`. The key is sent as untyped text, which the
 * database reads as the key's type (bigint, integer or uuid). Rows with a
 * final status (DELIVERED, FAILED, COMPLAINED) are settled: a later event
 * may still come, but a lost webhook cannot have left them behind. The
 * predicate is the one of the partial indexes of migration 0010, word for
 * word, so that the query reads only unsettled rows.
 */
export async function findUnsettledRows(
  sql: Sql,
  table: "documents" | "tenants",
  afterId: string | null,
  limit: number,
): Promise<UnsettledRow[]> {
  const rows = await (afterId === null ? firstPage(sql, table, limit) : nextPage(sql, table, afterId, limit));
  return rows.map((row) => ({
    table,
    id: String(row.id),
    messageId: row.email_message_id as string,
    status: row.email_status as string | null,
  }));
}

function firstPage(sql: Sql, table: "documents" | "tenants", limit: number) {
  return table === "documents"
    ? sql`
      select id, email_message_id, email_status from documents
      where mailgun_webhook.status_rank(email_status) < 2 and nullif(btrim(email_message_id, ' <>'), '') is not null
      order by id
      limit ${limit}
    `
    : sql`
      select id, email_message_id, email_status from tenants
      where mailgun_webhook.status_rank(email_status) < 2 and nullif(btrim(email_message_id, ' <>'), '') is not null
      order by id
      limit ${limit}
    `;
}

function nextPage(sql: Sql, table: "documents" | "tenants", afterId: string, limit: number) {
  return table === "documents"
    ? sql`
      select id, email_message_id, email_status from documents
      where mailgun_webhook.status_rank(email_status) < 2 and nullif(btrim(email_message_id, ' <>'), '') is not null
        and id > ${afterId}
      order by id
      limit ${limit}
    `
    : sql`
      select id, email_message_id, email_status from tenants
      where mailgun_webhook.status_rank(email_status) < 2 and nullif(btrim(email_message_id, ' <>'), '') is not null
        and id > ${afterId}
      order by id
      limit ${limit}
    `;
}
