import { cpuSeconds } from "./proc_stats.ts";

const LOAD_GENERATOR = new URL("./load_generator.ts", import.meta.url).pathname;

/** What the load generator reports for one drive. */
export interface LoadResult {
  requests: number;
  non2xx: number;
  errors: number;
  statuses: Record<string, number>;
  seconds: number;
  rps: number;
  /** Latency percentiles, ms. */
  p50: number;
  p99: number;
  p999: number;
  max: number;
  /** True when every body was sent before the time was up: the figure is then a floor. */
  ranOut: boolean;
}

/**
 * Drives `url` from `connections` keep-alive connections for `durationMs`,
 * with the bodies in `bodiesFile`; `cycle` sends them again once all are sent;
 * `rate` makes the load open, at that many requests per second (see load_generator.ts).
 */
export async function driveLoad(
  url: string,
  bodiesFile: string,
  connections: number,
  durationMs: number,
  cycle = false,
  rate?: number,
): Promise<LoadResult> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      `--allow-read=${bodiesFile}`,
      LOAD_GENERATOR,
      JSON.stringify({ url, bodiesFile, connections, durationMs, cycle, rate }),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error("The load generator failed.");
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

/** A drive's figures with the CPU the server spent on it. */
export interface MeasuredDrive extends LoadResult {
  /** CPU microseconds (user + system, all threads) the server used per answered request. */
  cpuUsPerRequest: number;
}

/** {@link driveLoad}, reading the server's CPU time before and after from /proc/<pid>/stat. */
export async function driveMeasured(
  server: { url: string; pid: number },
  path: string,
  bodiesFile: string,
  connections: number,
  durationMs: number,
  cycle = false,
): Promise<MeasuredDrive> {
  const before = cpuSeconds(server.pid);
  const load = await driveLoad(`${server.url}${path}`, bodiesFile, connections, durationMs, cycle);
  const cpu = cpuSeconds(server.pid) - before;
  return { ...load, cpuUsPerRequest: load.requests > 0 ? (cpu * 1e6) / load.requests : NaN };
}
