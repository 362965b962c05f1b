const MAILGUN_MESSAGE_ID = /^<?(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})\./;

/**
 * When a message was sent, read from its Mailgun Message-ID, which starts
 * with the UTC time of sending (`20260203192030.53383e583ab41f62@mg.example.com`
 * was sent at 2026-02-03 19:20:30 UTC). The tables hold no other time for a
 * row still `SENT`. Undefined when the id has no such time.
 */
export function messageSentAt(messageId: string): Date | undefined {
  const match = MAILGUN_MESSAGE_ID.exec(messageId.trim());
  if (match === null) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number);
  const time = Date.UTC(year, month - 1, day, hour, minute, second);
  const date = new Date(time);
  // Date.UTC rolls 2026-02-31 over into March: such an id carries no real time.
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    return undefined;
  }
  return date;
}
