import type { Sql } from "postgres";

/**
 * Erases one person's data from the trail through
 * `mailgun_webhook.erase_recipient` (migrations/0011), the one way to change
 * trail entries: only the entries that hold `address` as a whole address
 * change. Returns how many did. The database refuses (SQLSTATE 22023)
 * anything that is not exactly one address.
 */
export async function eraseRecipient(sql: Sql, address: string): Promise<number> {
  const [row] = await sql`select mailgun_webhook.erase_recipient(${address}) as erased`;
  return Number(row.erased);
}
