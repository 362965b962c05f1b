import type { Sql } from "postgres";

/** How far reconcile has read one domain's events through one of Mailgun's read APIs (migration 0013). */
export interface ReconcileWatermark {
  /** Every event stamped before this was read, and applied, by an earlier run. */
  scannedUntil: Date;
  /** The RECONCILE_RESCAN value of the last full rescan, if any. */
  rescanLabel: string | null;
}

/** The watermark of `domain` for `api`; undefined before the first complete run. */
export async function readReconcileWatermark(
  sql: Sql,
  domain: string,
  api: "logs" | "events",
): Promise<ReconcileWatermark | undefined> {
  const [row] = await sql`
    select scanned_until, rescan_label from mailgun_webhook.reconcile_watermarks
    where domain = ${domain} and api = ${api}
  `;
  if (row === undefined) return undefined;
  return { scannedUntil: new Date(row.scanned_until), rescanLabel: row.rescan_label ?? null };
}

/**
 * Records that every event of `domain` stamped before `scannedUntil` was read
 * and applied. The watermark only moves forward (two runs at once, or a run
 * with a longer minimum age, cannot move it back); a `rescanLabel` is kept
 * until a later full rescan replaces it.
 */
export async function advanceReconcileWatermark(
  sql: Sql,
  domain: string,
  api: "logs" | "events",
  scannedUntil: Date,
  rescanLabel: string | null,
): Promise<void> {
  await sql`
    insert into mailgun_webhook.reconcile_watermarks as w (domain, api, scanned_until, rescan_label)
    values (${domain}, ${api}, ${scannedUntil}, ${rescanLabel})
    on conflict (domain, api) do update
      set scanned_until = greatest(w.scanned_until, excluded.scanned_until),
          rescan_label = coalesce(excluded.rescan_label, w.rescan_label),
          updated_at = now()
  `;
}
