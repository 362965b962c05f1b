import type { Sql } from "postgres";

/**
 * Deletes up to `limit` consumed tokens signed more than `olderThanSeconds`
 * ago (by the database's clock). Returns how many went.
 */
export async function pruneTokens(sql: Sql, olderThanSeconds: number, limit: number): Promise<number> {
  const rows = await sql`
    delete from webhook_tokens
    where token in (
      select token from webhook_tokens
      where signed_at < now() - make_interval(secs => ${olderThanSeconds})
      limit ${limit}
    )
  `;
  return rows.count;
}
