const REFERENCE_SQL = new URL("./reference.sql", import.meta.url).pathname;

/**
 * pgbench opens one server connection per client; PostgreSQL's default
 * max_connections is 100. The reference's throughput is flat long before.
 */
const PGBENCH_MAX_CLIENTS = 64;

/**
 * Runs `pgbench -M prepared` on bench/reference.sql (the same database work
 * per event as the service, as one statement) and returns its tps.
 */
export async function runPgbench(
  databaseUrl: string,
  connections: number,
  durationMs: number,
  documents: number,
): Promise<number> {
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
      REFERENCE_SQL,
      databaseUrl,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(text)?.[1];
  if (!output.success || tps === undefined) {
    throw new Error(`pgbench failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return Number(tps);
}
