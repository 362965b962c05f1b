import type { Sql } from "postgres";
import { withTimeout } from "./with_timeout.ts";

/** True when the database answers a trivial query within `timeoutMs`. */
export async function ping(sql: Sql, timeoutMs: number): Promise<boolean> {
  try {
    await withTimeout(sql`select 1 as ok`, timeoutMs, () => new Error("Database did not answer in time."));
    return true;
  } catch {
    return false;
  }
}
