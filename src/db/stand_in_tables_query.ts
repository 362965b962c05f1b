import type { Sql } from "postgres";
import { withTimeout } from "./with_timeout.ts";

/**
 * The API's tables (`documents`, `tenants`) that this service's own migration
 * created because the database had none (mailgun_webhook.stand_in_tables,
 * written by 0008): empty when both were found. Rows in stand-ins mean the
 * service is not writing to the API's database. Call only on a migrated
 * database.
 */
export async function findStandInTables(sql: Sql, timeoutMs: number): Promise<string[]> {
  const rows = await withTimeout(
    sql`select table_name from mailgun_webhook.stand_in_tables order by table_name`,
    timeoutMs,
    () => Object.assign(new Error(`Database did not answer within ${timeoutMs} ms.`), { code: "TIMEOUT" }),
  );
  return rows.map((row) => row.table_name as string);
}
