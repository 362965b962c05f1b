import { WEBHOOK_PATH } from "../src/config/routes.ts";
import { createBenchDatabase, seedDocuments, seedTokens } from "./bench_database.ts";
import type { BenchOptions } from "./bench_options.ts";
import { driveMeasured, type MeasuredDrive } from "./drive_load.ts";
import { type ServerProcess, startService } from "./service_process.ts";
import { writeSignedBodies } from "./signed_bodies.ts";
import { median } from "./stats.ts";
import type { TargetCheck } from "./targets.ts";

const RESULTS = new URL("./results/", import.meta.url).pathname;
const SMALL_DOCUMENTS = 100_000;
/** At `--scale-factor 1`: the documents and consumed tokens of the large tables. */
const LARGE_ROWS = 10_000_000;
/**
 * The consumed tokens span 49 hours: the service keeps 25 (the default 24-hour
 * signature window, 5 minutes of skew, an hour of margin), so the oldest day's
 * worth, about half, is what a pruning that did not run for a day finds.
 */
const TOKEN_SPAN_HOURS = 49;
const CONNECTIONS = 32;
const BODIES = 150_000;
/** Keeps the pruner away while throughput is measured (its 10-minute interval is longer than those phases). */
const NO_PRUNING = { TOKEN_PRUNE_FIRST_DELAY_MS: String(24 * 60 * 60 * 1000) };
/** Throughput on the large tables, at least this share of the small tables'. */
const THROUGHPUT_SHARE_MIN = 0.9;
/** p99 while a day of tokens is pruned, at most this multiple of the p99 without pruning. */
const PRUNING_P99_GROWTH_MAX = 1.2;
/** Bounds the pruning phase: drives stop after this many rounds even if pruning has not ended. */
const PRUNING_ROUNDS_MAX = 30;

/** What a `--scale` run measured, as bench/results/bench-scale.json holds it. */
export interface ScaleReport {
  date: string;
  scaleFactor: number;
  connections: number;
  durationMs: number;
  small: { documents: number; tokens: number; rounds: MeasuredDrive[]; rps: number; p99: number };
  large: { documents: number; tokens: number; rounds: MeasuredDrive[]; rps: number; p99: number };
  /** `deleted` and `ms` are null when pruning had not ended by the last drive. */
  pruning: {
    deleted: number | null;
    ms: number | null;
    rounds: MeasuredDrive[];
    p99: number;
    maxP99: number;
  } | null;
  seedMs: number;
  targets: TargetCheck[];
}

/**
 * Throughput at 32 connections with 100,000 documents and no tokens, then
 * with 10,000,000 documents and 10,000,000 consumed tokens (times
 * `--scale-factor`), then the p99 while the service prunes the oldest day
 * of those tokens under the same load.
 */
export async function runScaleBench(adminUrl: string, options: BenchOptions): Promise<boolean> {
  const large = Math.max(SMALL_DOCUMENTS + 1, Math.round(LARGE_ROWS * options.scaleFactor));
  const key = `bench-key-${crypto.randomUUID()}`;
  const database = await createBenchDatabase(adminUrl, SMALL_DOCUMENTS);
  const bodiesFile = await Deno.makeTempFile({ prefix: "mgwh-bench-", suffix: ".jsonl" });
  let service: ServerProcess | undefined;
  const rounds = async (server: ServerProcess, documents: number, count: number) => {
    const drives: MeasuredDrive[] = [];
    for (let round = 0; round < count; round++) {
      await database.resetDocuments();
      await writeSignedBodies(bodiesFile, key, BODIES, documents);
      drives.push(await driveMeasured(server, WEBHOOK_PATH, bodiesFile, CONNECTIONS, options.durationMs));
    }
    return drives;
  };
  const summary = (drives: MeasuredDrive[]) => ({
    rps: median(drives.map((d) => d.rps)),
    p99: median(drives.map((d) => d.p99)),
  });
  try {
    service = await startService(database.url, key, { env: NO_PRUNING });
    await rounds(service, SMALL_DOCUMENTS, 1);
    const smallRounds = await rounds(service, SMALL_DOCUMENTS, options.rounds);
    await service.stop();
    const small = { documents: SMALL_DOCUMENTS, tokens: 0, rounds: smallRounds, ...summary(smallRounds) };
    console.log(`small tables: ${small.rps.toFixed(0)} events/s, p99 ${small.p99.toFixed(2)} ms`);

    const seedStarted = performance.now();
    await database.sql`truncate webhook_tokens`;
    await seedDocuments(database.sql, SMALL_DOCUMENTS + 1, large);
    await seedTokens(database.sql, large, TOKEN_SPAN_HOURS);
    await database.sql`checkpoint`;
    const seedMs = performance.now() - seedStarted;
    console.log(`seeded ${large} documents and ${large} tokens in ${(seedMs / 1000).toFixed(0)} s`);

    service = await startService(database.url, key, { env: NO_PRUNING });
    await rounds(service, large, 1);
    const largeRounds = await rounds(service, large, options.rounds);
    await service.stop();
    const largeResult = { documents: large, tokens: large, rounds: largeRounds, ...summary(largeRounds) };
    console.log(
      `large tables: ${largeResult.rps.toFixed(0)} events/s, p99 ${largeResult.p99.toFixed(2)} ms ` +
        `(${(largeResult.rps / small.rps).toFixed(2)}x the small tables' throughput)`,
    );

    // The pruner starts at once; drives follow each other until its log line says it is done.
    let pruned: { deleted: number; ms: number } | undefined;
    service = await startService(database.url, key, {
      env: { TOKEN_PRUNE_FIRST_DELAY_MS: "0" },
      onLogLine(line) {
        if (!line.includes("pruned consumed tokens")) return;
        const entry = JSON.parse(line) as { deleted: number; ms: number };
        pruned = { deleted: entry.deleted, ms: entry.ms };
      },
    });
    const pruningRounds: MeasuredDrive[] = [];
    while (pruned === undefined && pruningRounds.length < PRUNING_ROUNDS_MAX) {
      await writeSignedBodies(bodiesFile, key, BODIES, large);
      const drive = await driveMeasured(service, WEBHOOK_PATH, bodiesFile, CONNECTIONS, options.durationMs);
      // Only drives that pruning covered from start to end count.
      if (pruned === undefined) pruningRounds.push(drive);
    }
    await service.stop();
    service = undefined;
    const pruning = pruningRounds.length === 0 ? null : {
      deleted: pruned?.deleted ?? null,
      ms: pruned?.ms ?? null,
      rounds: pruningRounds,
      p99: median(pruningRounds.map((d) => d.p99)),
      maxP99: Math.max(...pruningRounds.map((d) => d.p99)),
    };
    console.log(
      pruning
        ? (pruning.ms === null
          ? `pruning had not ended after ${pruningRounds.length} drives; `
          : `pruning ${pruning.deleted} tokens took ${(pruning.ms / 1000).toFixed(1)} s; `) +
          `p99 meanwhile ${pruning.p99.toFixed(2)} ms (max ${pruning.maxP99.toFixed(2)}) ` +
          `vs ${largeResult.p99.toFixed(2)} ms without`
        : "pruning: no drive ran wholly while pruning (it ended within the first drive)",
    );

    const report: ScaleReport = {
      date: new Date().toISOString(),
      scaleFactor: options.scaleFactor,
      connections: CONNECTIONS,
      durationMs: options.durationMs,
      small,
      large: largeResult,
      pruning,
      seedMs,
      targets: scaleTargets(small.rps, largeResult, pruning),
    };
    for (const target of report.targets) {
      console.log(`${target.met ? "met" : "NOT MET"}: ${target.name}: ${target.figure} (target ${target.target})`);
    }
    await Deno.mkdir(RESULTS, { recursive: true });
    await Deno.writeTextFile(`${RESULTS}bench-scale.json`, JSON.stringify(report, null, 2) + "\n");
    console.log(`results: ${RESULTS}bench-scale.json`);
    const drives = [...smallRounds, ...largeRounds, ...pruningRounds];
    return drives.every((d) => d.requests > 0 && d.non2xx === 0);
  } finally {
    await service?.stop();
    await Deno.remove(bodiesFile);
    await database.drop();
  }
}

function scaleTargets(
  smallRps: number,
  large: { rps: number; p99: number },
  pruning: { p99: number } | null,
): TargetCheck[] {
  const share = large.rps / smallRps;
  const checks: TargetCheck[] = [{
    name: "throughput with large tables vs small",
    figure: `${share.toFixed(2)}x`,
    target: `≥ ${THROUGHPUT_SHARE_MIN}x`,
    met: share >= THROUGHPUT_SHARE_MIN,
  }];
  const growth = pruning ? pruning.p99 / large.p99 : NaN;
  checks.push({
    name: "p99 while pruning a day of tokens vs without",
    figure: pruning ? `${growth.toFixed(2)}x` : "not measured",
    target: `≤ ${PRUNING_P99_GROWTH_MAX}x`,
    met: growth <= PRUNING_P99_GROWTH_MAX,
  });
  return checks;
}
