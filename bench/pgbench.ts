/** bench/reference.sql: the service's own tables, the same database work per event, as one statement. */
export const REFERENCE_SQL = new URL("./reference.sql", import.meta.url).pathname;
/** bench/lean_reference.sql: the same work per event on lean tables with only the keys it needs (issue 22). */
export const LEAN_REFERENCE_SQL = new URL("./lean_reference.sql", import.meta.url).pathname;

/**
 * pgbench opens one server connection per client; PostgreSQL's default
 * max_connections is 100. The reference's throughput is flat long before.
 */
const PGBENCH_MAX_CLIENTS = 64;

/** What one pgbench run did. */
export interface PgbenchResult {
  tps: number;
  transactions: number;
}

/**
 * Runs `pgbench -M prepared` on `script` (bench/reference.sql unless told)
 * and returns its tps and the transactions it ran.
 */
export async function runPgbench(
  databaseUrl: string,
  connections: number,
  durationMs: number,
  documents: number,
  script = REFERENCE_SQL,
): Promise<PgbenchResult> {
  const clients = Math.min(connections, PGBENCH_MAX_CLIENTS);
  const output = await new Deno.Command("pgbench", {
    args: [
      "-n",
      "-M",
      "prepared",
      "-c",
      String(clients),
      "-j",
      String(Math.min(clients, 2)),
      "-T",
      String(Math.max(1, Math.round(durationMs / 1000))),
      "-D",
      `documents=${documents}`,
      "-f",
      script,
      databaseUrl,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(text)?.[1];
  const transactions = /number of transactions actually processed: (\d+)/.exec(text)?.[1];
  if (!output.success || tps === undefined || transactions === undefined) {
    throw new Error(`pgbench failed on ${script}: ${new TextDecoder().decode(output.stderr)}`);
  }
  return { tps: Number(tps), transactions: Number(transactions) };
}
