import type { Sql } from "postgres";

/**
 * Empties the partitions of consumed tokens (one per UTC day of signature,
 * modulo 16: migration 0007) that hold no day from `olderThanSeconds` ago to
 * `aheadSeconds` ahead, by the database's clock. Returns how many it emptied.
 */
export async function pruneTokens(sql: Sql, olderThanSeconds: number, aheadSeconds: number): Promise<number> {
  const [row] = await sql`select mailgun_webhook.prune_tokens(${olderThanSeconds}, ${aheadSeconds}) as emptied`;
  return row.emptied;
}
