import type { Sql } from "postgres";

/** True when the database answers a trivial query within `timeoutMs`. */
export async function ping(sql: Sql, timeoutMs: number): Promise<boolean> {
  const query = sql`select 1 as ok`;
  query.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => {
      query.cancel();
      resolve(false);
    }, timeoutMs);
  });
  try {
    return await Promise.race([query.then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
