import { WEBHOOK_PATH } from "../src/config/routes.ts";
import { createBenchDatabase } from "./bench_database.ts";
import type { BenchOptions } from "./bench_options.ts";
import { driveLoad, driveMeasured, type LoadResult } from "./drive_load.ts";
import { LEAN_REFERENCE_SQL, REFERENCE_SQL, runPgbench } from "./pgbench.ts";
import { rssMiB } from "./proc_stats.ts";
import { type ServerProcess, startService } from "./service_process.ts";
import { writeSignedBodies } from "./signed_bodies.ts";
import { median } from "./stats.ts";
import type { TargetCheck } from "./targets.ts";

const RESULTS = new URL("./results/", import.meta.url).pathname;
const DOCUMENTS = 100_000;
const SMOKE_DOCUMENTS = 2_000;
/** Closed-loop connections for the sustainable rate and the references, as the full bench's main level. */
const CONNECTIONS = 32;
/** Issue 22: at half a reference's throughput, p99 at most this. */
const FIXED_RATE_P99_MAX_MS = 10;
/** Issue 22: under 2x and 10x the sustainable rate, RSS at most this multiple of its steady value. */
const OVERLOAD_RSS_GROWTH_MAX = 1.2;
const OVERLOAD_FACTORS = [2, 10];
/** Issue 22: each overload lasts 60 s. */
const OVERLOAD_MS = 60_000;
/**
 * Open connections of every open-loop drive, the fixed-rate ones and the
 * overloads alike. Enough that the service, not the sender, decides what
 * waits: at 2x the sustainable rate, a second of backlog is thousands of
 * webhooks in flight (a sender like Mailgun opens a connection per webhook
 * it has to send). The same number in every drive, so that the RSS of an
 * overload compares the work the service holds with its steady value, not
 * the sockets a sender chose to open.
 */
const OPEN_LOOP_CONNECTIONS = 4_000;
const RSS_SAMPLE_MS = 1_000;
/**
 * Bodies signed for one drive at most; an overload drive sends them again
 * (re-deliveries, which the service still verifies and looks up) rather than
 * sign millions.
 */
const MAX_BODIES = 300_000;
const SMOKE_MAX_BODIES = 20_000;

/** One open-loop drive at a fixed rate, with the service's RSS sampled through it. */
interface RateDrive {
  label: string;
  /** Requests per second asked for. */
  rate: number;
  connections: number;
  load: LoadResult;
  /** RSS samples, MiB, one a second. */
  rssMiB: number[];
}

/** What a `--latency` run measured, as bench/results/bench-latency.json holds it. */
export interface LatencyReport {
  date: string;
  sustainableRps: number;
  referenceTps: number;
  leanTps: number;
  fixedRate: RateDrive[];
  /** Median RSS of the drive at half the reference's rate, MiB. */
  steadyRssMiB: number;
  overload: RateDrive[];
  targets: TargetCheck[];
}

/**
 * Issue 22, point 4: p99 where it means something, and memory under overload.
 * Measures the sustainable rate (32 closed-loop connections) and both
 * references (pgbench), then drives the service open-loop at a fixed rate of
 * half each reference's throughput (latency counted from when each request
 * was due), then at 2x and 10x the sustainable rate for 60 s each: the
 * service must shed with 503 and keep its RSS within 20% of the steady value.
 */
export async function runLatencyBench(adminUrl: string, options: BenchOptions): Promise<boolean> {
  const key = `bench-key-${crypto.randomUUID()}`;
  const documents = options.smoke ? SMOKE_DOCUMENTS : DOCUMENTS;
  const database = await createBenchDatabase(adminUrl, documents);
  const bodiesFile = await Deno.makeTempFile({ prefix: "mgwh-bench-", suffix: ".jsonl" });
  const overloadMs = options.smoke ? 2_000 : OVERLOAD_MS;
  let service: ServerProcess | undefined;
  try {
    service = await startService(database.url, key);
    const running = service;
    const bodies = async (count: number) => {
      await database.resetDocuments();
      await writeSignedBodies(bodiesFile, key, Math.ceil(count), documents);
    };
    await bodies(options.smoke ? 20_000 : 150_000);
    const saturated = await driveMeasured(running, WEBHOOK_PATH, bodiesFile, CONNECTIONS, options.durationMs);
    const sustainableRps = saturated.rps;
    await database.resetDocuments();
    const referenceTps =
      (await runPgbench(database.url, CONNECTIONS, options.durationMs, documents, REFERENCE_SQL)).tps;
    await database.resetDocuments();
    const leanTps =
      (await runPgbench(database.url, CONNECTIONS, options.durationMs, documents, LEAN_REFERENCE_SQL)).tps;
    console.log(
      `sustainable ${sustainableRps.toFixed(0)} events/s at ${CONNECTIONS} connections; ` +
        `reference ${referenceTps.toFixed(0)} tps, lean reference ${leanTps.toFixed(0)} tps`,
    );

    const drive = async (label: string, rate: number, connections: number, ms: number): Promise<RateDrive> => {
      const needed = rate * (ms / 1000) * 1.1 + 1000;
      await bodies(Math.min(needed, options.smoke ? SMOKE_MAX_BODIES : MAX_BODIES));
      const samples: number[] = [];
      const sampler = setInterval(() => samples.push(rssMiB(running.pid)), RSS_SAMPLE_MS);
      try {
        const cycle = needed > (options.smoke ? SMOKE_MAX_BODIES : MAX_BODIES);
        const load = await driveLoad(`${running.url}${WEBHOOK_PATH}`, bodiesFile, connections, ms, cycle, rate);
        const result = { label, rate, connections, load, rssMiB: samples };
        console.log(
          `${label}: ${rate.toFixed(0)}/s asked, ${load.rps.toFixed(0)}/s answered, p50 ${load.p50.toFixed(2)} ms, ` +
            `p99 ${load.p99.toFixed(2)} ms, p99.9 ${load.p999.toFixed(2)} ms, statuses ${
              JSON.stringify(load.statuses)
            }, ` +
            `errors ${load.errors}, RSS ${Math.min(...samples).toFixed(0)}-${Math.max(...samples).toFixed(0)} MiB`,
        );
        return result;
      } finally {
        clearInterval(sampler);
      }
    };
    const fixedRate = [
      await drive("half the reference", referenceTps / 2, OPEN_LOOP_CONNECTIONS, options.durationMs * 2),
      await drive("half the lean reference", leanTps / 2, OPEN_LOOP_CONNECTIONS, options.durationMs * 2),
    ];
    const steadyRssMiB = median(fixedRate[0].rssMiB.slice(Math.floor(fixedRate[0].rssMiB.length / 2)));
    const overload: RateDrive[] = [];
    for (const factor of OVERLOAD_FACTORS) {
      overload.push(
        await drive(`${factor}x the sustainable rate`, sustainableRps * factor, OPEN_LOOP_CONNECTIONS, overloadMs),
      );
    }

    const targets: TargetCheck[] = [
      ...fixedRate.map((d) => ({
        name: `p99 at ${d.label}'s throughput (${d.rate.toFixed(0)}/s, open loop)`,
        figure: `${d.load.p99.toFixed(2)} ms`,
        target: `≤ ${FIXED_RATE_P99_MAX_MS} ms`,
        met: d.load.p99 <= FIXED_RATE_P99_MAX_MS && d.load.non2xx === 0,
      })),
      ...overload.map((d) => {
        const peak = Math.max(...d.rssMiB);
        const shed = d.load.statuses["503"] ?? 0;
        return {
          name: `${d.label} for ${overloadMs / 1000} s: sheds with 503, RSS within 20% of steady`,
          figure:
            `${shed} answered 503, peak RSS ${peak.toFixed(0)} MiB = ${(peak / steadyRssMiB).toFixed(2)}x steady ` +
            `(${steadyRssMiB.toFixed(0)} MiB)`,
          target: `503s > 0, ≤ ${OVERLOAD_RSS_GROWTH_MAX}x`,
          met: shed > 0 && peak <= steadyRssMiB * OVERLOAD_RSS_GROWTH_MAX,
        };
      }),
    ];
    for (const t of targets) {
      console.log(`${t.met ? "met    " : "NOT met"} ${t.name}: ${t.figure} (target ${t.target})`);
    }
    const report: LatencyReport = {
      date: new Date().toISOString(),
      sustainableRps,
      referenceTps,
      leanTps,
      fixedRate,
      steadyRssMiB,
      overload,
      targets,
    };
    await Deno.writeTextFile(
      `${RESULTS}bench-latency${options.smoke ? "-smoke" : ""}.json`,
      JSON.stringify(report, null, 2) + "\n",
    );
    // A smoke run checks that the instrument works, not the targets.
    return options.smoke || targets.every((t) => t.met);
  } finally {
    await service?.stop();
    await database.drop();
    await Deno.remove(bodiesFile).catch(() => {});
  }
}
