import type { Sql } from "postgres";

/**
 * Empties the partitions of consumed tokens (one per UTC day of signature,
 * modulo 16) that hold no day from `olderThanSeconds` ago to `aheadSeconds`
 * ahead, by the database's clock. Returns how many it emptied.
 *
 * Two statements, so two transactions even through a transaction-mode pooler
 * (migration 0012): the first moves the prune horizon past the days to empty
 * and commits (a short share lock on the tokens, only when it moves); the
 * second empties them without that lock, so webhooks never wait for a
 * truncation. The second is safe on its own: it moves the horizon itself,
 * under the same lock, when the first did not (a UTC day turned between them).
 */
export async function pruneTokens(sql: Sql, olderThanSeconds: number, aheadSeconds: number): Promise<number> {
  await sql`select mailgun_webhook.advance_token_horizon(${olderThanSeconds}, ${aheadSeconds})`;
  const [row] = await sql`select mailgun_webhook.prune_tokens(${olderThanSeconds}, ${aheadSeconds}) as emptied`;
  return row.emptied;
}

/**
 * The prune horizon, Unix seconds (-Infinity before any pruning): tokens of
 * signatures before it may be gone, and such signatures are refused.
 */
export async function readTokenHorizon(sql: Sql): Promise<number> {
  const [row] =
    await sql`select extract(epoch from pruned_before)::float8 as pruned_before from mailgun_webhook.token_horizon`;
  return row.pruned_before;
}
