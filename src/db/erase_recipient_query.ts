import type { Sql } from "postgres";

/**
 * Erases one person's data from the trail (email_events_erase_recipient, see
 * migrations/0011): the recipient, the message headers but its message-id,
 * the envelope's addresses, the stored message, and the address wherever else
 * it appears in event_data. Returns how many trail entries changed.
 */
export async function eraseRecipient(sql: Sql, address: string): Promise<number> {
  const [row] = await sql`select mailgun_webhook.erase_recipient(${address}) as erased`;
  return Number(row.erased);
}
