import type { Sql } from "postgres";
import { WEBHOOK_PATH } from "../src/config/routes.ts";
import { type BenchDatabase, createBenchDatabase, seedDocuments, seedTokens } from "./bench_database.ts";
import type { BenchOptions } from "./bench_options.ts";
import { driveMeasured, type MeasuredDrive } from "./drive_load.ts";
import { type ServerProcess, startService } from "./service_process.ts";
import { writeSignedBodies } from "./signed_bodies.ts";
import { median } from "./stats.ts";
import {
  DEFAULT_SIGNATURE_MAX_AGE_SECONDS,
  DEFAULT_SIGNATURE_MAX_FUTURE_SECONDS,
} from "../src/config/service_config.ts";
import { pruneTokens } from "../src/db/prune_tokens_query.ts";
import { pruneReach } from "../src/pruning/token_pruner.ts";
import type { TargetCheck } from "./targets.ts";

const RESULTS = new URL("./results/", import.meta.url).pathname;
const SMALL_DOCUMENTS = 100_000;
/** At `--scale-factor 1`: the documents and consumed tokens of the large tables. */
const LARGE_ROWS = 10_000_000;
/**
 * The consumed tokens span 49 hours: the default window reaches 25 back (24
 * hours of age, 5 minutes of skew, an hour of margin), so the UTC days before
 * that, 11 to 35 hours of tokens by the time of day, are what a pruning that
 * did not run for a day finds.
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
/** How often the bench looks for the drive's first webhooks in the database's statistics. */
const ARRIVAL_POLL_MS = 100;
/** Drives with a pruning in them, each with its control drive (issue 22: several samples per run). */
const PRUNING_SAMPLES = 3;
/**
 * Where the tokens seeded again for a later sample end: older than the 25
 * hours the default window reaches back, with an hour to spare.
 */
const OLD_TOKENS_END_HOURS = 26;

/** What a `--scale` run measured, as bench/results/bench-scale.json holds it. */
export interface ScaleReport {
  date: string;
  scaleFactor: number;
  connections: number;
  durationMs: number;
  small: { documents: number; tokens: number; rounds: MeasuredDrive[]; rps: number; p99: number };
  large: { documents: number; tokens: number; rounds: MeasuredDrive[]; rps: number; p99: number };
  /** Null when the pruning ran inside none of its drives. */
  pruning: {
    samples: PruningSample[];
    /** The median over the samples of the drive's p99 over its control's. */
    p99GrowthMedian: number;
  } | null;
  seedMs: number;
  targets: TargetCheck[];
}

/** One pruning under load, and the drive right after it without. */
interface PruningSample {
  /** Tokens before the drive, plus one per 2xx webhook of it, minus tokens after. */
  deleted: number;
  partitions: number;
  ms: number;
  /** The drive during which the pruning ran. */
  drive: MeasuredDrive;
  /** The drive that followed, on the same service, without pruning. */
  control: MeasuredDrive;
}

/**
 * Throughput at 32 connections with 100,000 documents and no tokens, then
 * with 10,000,000 documents and 10,000,000 consumed tokens (times
 * `--scale-factor`), then the p99 of a drive in which the pruner's query
 * empties the token partitions out of every window, under the same load.
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
    await database.sql`truncate mailgun_webhook.tokens`;
    await seedDocuments(database.sql, SMALL_DOCUMENTS + 1, large);
    await seedTokens(database.sql, large, TOKEN_SPAN_HOURS);
    await database.sql`checkpoint`;
    const seedMs = performance.now() - seedStarted;
    console.log(`seeded ${large} documents and ${large} tokens in ${(seedMs / 1000).toFixed(0)} s`);

    service = await startService(database.url, key, { env: NO_PRUNING });
    await rounds(service, large, 1);
    const largeRounds = await rounds(service, large, options.rounds);
    const largeResult = { documents: large, tokens: large, rounds: largeRounds, ...summary(largeRounds) };
    console.log(
      `large tables: ${largeResult.rps.toFixed(0)} events/s, p99 ${largeResult.p99.toFixed(2)} ms ` +
        `(${(largeResult.rps / small.rps).toFixed(2)}x the small tables' throughput)`,
    );

    // Drives on the same (warm) service, each with a pruning in its middle,
    // each followed by the same drive without: emptying a partition takes
    // milliseconds, so no drive could run wholly while it runs, and one pair
    // is at the mercy of the machine's noise. The bench runs the pruner's own
    // query (the service's timer would fire at a moment the bench cannot align
    // with a drive), once webhooks are seen arriving; before each later
    // sample it seeds the old hours again, which the pruning emptied.
    const pruningSamples: PruningSample[] = [];
    for (let sample = 0; sample < (options.smoke ? 1 : PRUNING_SAMPLES); sample++) {
      if (sample > 0) {
        const oldHours = TOKEN_SPAN_HOURS - OLD_TOKENS_END_HOURS;
        const count = Math.round(large * (oldHours / TOKEN_SPAN_HOURS));
        await seedTokens(database.sql, count, oldHours, { endHoursAgo: OLD_TOKENS_END_HOURS, batch: sample });
      }
      const measured = await prunedDrive(database, service, bodiesFile, key, large, options.durationMs);
      // The same drive again, without pruning: what the machine gave at that moment.
      const [control] = await rounds(service, large, 1);
      if (measured === null) {
        console.log(
          "pruning: it did not run inside the drive (webhooks were not seen arriving, or the drive had ended)",
        );
        continue;
      }
      pruningSamples.push({ ...measured, control });
      console.log(
        `pruning ${measured.deleted} tokens (${measured.partitions} partitions) took ${measured.ms.toFixed(0)} ms; ` +
          `p99 of the drive around it ${measured.drive.p99.toFixed(2)} ms vs ${control.p99.toFixed(2)} ms in the ` +
          `drive right after, without pruning (${(measured.drive.p99 / control.p99).toFixed(2)}x)`,
      );
    }
    await service.stop();
    service = undefined;
    const pruning = pruningSamples.length === 0 ? null : {
      samples: pruningSamples,
      p99GrowthMedian: median(pruningSamples.map((p) => p.drive.p99 / p.control.p99)),
    };
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
    const drives = [...smallRounds, ...largeRounds, ...pruningSamples.flatMap((p) => [p.drive, p.control])];
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
  pruning: { samples: PruningSample[]; p99GrowthMedian: number } | null,
): TargetCheck[] {
  const share = large.rps / smallRps;
  const checks: TargetCheck[] = [{
    name: "throughput with large tables vs small",
    figure: `${share.toFixed(2)}x`,
    target: `≥ ${THROUGHPUT_SHARE_MIN}x`,
    met: share >= THROUGHPUT_SHARE_MIN,
  }];
  const growth = pruning?.p99GrowthMedian ?? NaN;
  checks.push({
    name: "p99 while pruning a day of tokens vs the drive right after without (median of the samples)",
    figure: pruning
      ? `${growth.toFixed(2)}x (${pruning.samples.map((p) => (p.drive.p99 / p.control.p99).toFixed(2)).join(", ")})`
      : "not measured",
    target: `≤ ${PRUNING_P99_GROWTH_MAX}x`,
    met: growth <= PRUNING_P99_GROWTH_MAX,
  });
  return checks;
}

/**
 * One drive with the pruner's query run in its middle, once webhooks are
 * seen arriving; null when the pruning did not fall inside the drive.
 */
async function prunedDrive(
  database: BenchDatabase,
  service: ServerProcess,
  bodiesFile: string,
  key: string,
  documents: number,
  durationMs: number,
): Promise<Omit<PruningSample, "control"> | null> {
  await database.resetDocuments();
  await writeSignedBodies(bodiesFile, key, BODIES, documents);
  const [{ n: tokensBefore }] = await database.sql`select count(*)::int as n from mailgun_webhook.tokens`;
  let driveEnded = false;
  const driving = driveMeasured(service, WEBHOOK_PATH, bodiesFile, CONNECTIONS, durationMs)
    .finally(() => driveEnded = true);
  const arriving = await untilTokensArrive(database.sql, durationMs);
  await new Promise((resolve) => setTimeout(resolve, durationMs / 3));
  const pruneStarted = performance.now();
  const { olderThanSeconds, aheadSeconds } = pruneReach({
    maxAgeSeconds: DEFAULT_SIGNATURE_MAX_AGE_SECONDS,
    maxFutureSeconds: DEFAULT_SIGNATURE_MAX_FUTURE_SECONDS,
  });
  const partitions = await pruneTokens(database.sql, olderThanSeconds, aheadSeconds);
  const ms = performance.now() - pruneStarted;
  const covered = arriving && !driveEnded;
  const drive = await driving;
  const [{ n: tokensAfter }] = await database.sql`select count(*)::int as n from mailgun_webhook.tokens`;
  if (!covered) return null;
  // Every 2xx webhook of the drive consumed one token.
  return { deleted: tokensBefore + drive.requests - tokensAfter, partitions, ms, drive };
}

/**
 * Waits until the token partitions' insert counter (cumulative statistics,
 * cheap to read, flushed by each backend within about a second) moves:
 * the drive's webhooks are being written. False if it does not within
 * `timeoutMs`.
 */
async function untilTokensArrive(sql: Sql, timeoutMs: number): Promise<boolean> {
  const inserted = async () => {
    const [row] = await sql`
      select coalesce(sum(n_tup_ins), 0)::float8 as n from pg_stat_user_tables where schemaname = 'mailgun_webhook' and relname like 'tokens\_%'
    `;
    return row.n as number;
  };
  const before = await inserted();
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, ARRIVAL_POLL_MS));
    if ((await inserted()) > before) return true;
  }
  return false;
}
