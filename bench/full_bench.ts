import { WEBHOOK_PATH } from "../src/config/routes.ts";
import { createBenchDatabase } from "./bench_database.ts";
import type { BenchOptions } from "./bench_options.ts";
import { driveMeasured, type MeasuredDrive } from "./drive_load.ts";
import { LEAN_REFERENCE_SQL, type PgbenchResult, REFERENCE_SQL, runPgbench } from "./pgbench.ts";
import { findPostmaster, measurePostgres, microsecondsPer } from "./postgres_cpu.ts";
import { peakRssMiB } from "./proc_stats.ts";
import { renderChart } from "./render_chart.ts";
import { type ServerProcess, startHelloServer, startService } from "./service_process.ts";
import { writeSignedBodies } from "./signed_bodies.ts";
import { median } from "./stats.ts";
import { checkTargets, type TargetCheck } from "./targets.ts";

const RESULTS = new URL("./results/", import.meta.url).pathname;
/** The connection count of the CPU comparison with hello-world, when the run drives it. */
const CPU_LEVEL = 32;

/** A pgbench run with what PostgreSQL spent on it. */
export interface ReferenceRun extends PgbenchResult {
  /** PostgreSQL's CPU (all its processes, exited backends included) per transaction, µs; null when unreadable. */
  postgresUsPerTransaction: number | null;
}

/** One round of a level: the service's drive, then each reference on the same database. */
export interface Round {
  service: MeasuredDrive & {
    /** PostgreSQL's CPU per answered webhook (one event each) during the drive, µs; null when unreadable. */
    postgresUsPerEvent: number | null;
    /** Answered webhooks per transaction committed in the bench database during the drive: the mean batch. */
    eventsPerCommit: number | null;
  };
  /** bench/reference.sql: the same work on the service's own tables. */
  reference: ReferenceRun;
  /** bench/lean_reference.sql: the same work on lean tables (issue 22). */
  lean: ReferenceRun;
  /** The service's events/s over the reference's tps. */
  ratio: number;
  /** The service's events/s over the lean reference's tps. */
  leanRatio: number;
  /** PostgreSQL's CPU per event over its CPU per lean transaction; null when unreadable. */
  postgresRatio: number | null;
  /** Transactions of the cluster's other databases during the round's three windows: their CPU is in the figures. */
  otherTransactions: number;
}

/** One connection count: each round's figures and their medians. */
export interface LevelResult {
  connections: number;
  rounds: Round[];
  /** Medians over the rounds. */
  service: { rps: number; p50: number; p99: number; non2xx: number; cpuUsPerWebhook: number; ranOut: boolean };
  referenceTps: number;
  ratio: number;
  leanTps: number;
  leanRatio: number;
  /** Medians of PostgreSQL's CPU, µs: per service event, per reference and per lean transaction; null when unreadable. */
  postgres: {
    usPerEvent: number | null;
    referenceUsPerTransaction: number | null;
    leanUsPerTransaction: number | null;
    /** Per event over per lean transaction (the median of the rounds' ratios). */
    ratio: number | null;
  };
}

/** What a full (or smoke) run measured, as bench/results/bench-<mode>.json holds it. */
export interface FullReport {
  date: string;
  mode: "full" | "smoke";
  machine: { cores: number; deno: string };
  documents: number;
  durationMs: number;
  coldStartMs: number;
  /** The service's peak resident set over the run, with V8's defaults (Deno Deploy takes no flags). */
  peakRssMiB: number;
  levels: LevelResult[];
  hello: { connections: number; rounds: MeasuredDrive[]; cpuUsPerRequest: number; peakRssMiB: number };
  cpuRatio: number;
  /** Whether PostgreSQL's CPU could be read (a local server whose /proc this user reads). */
  postgresCpuReadable: boolean;
  targets: TargetCheck[];
}

/**
 * The service against pgbench's one-statement references (the service's own
 * tables, and lean tables) on the same database, level by level and round by
 * round, with PostgreSQL's CPU over each; then the same load on a hello-world
 * `Deno.serve` for the CPU yardstick. Returns false when a drive had no
 * requests or a non-2xx answer.
 */
export async function runFullBench(adminUrl: string, options: BenchOptions): Promise<boolean> {
  const documents = options.smoke ? 2_000 : 100_000;
  // More than any drive can send in its time: one that runs out says so.
  const bodies = options.smoke ? 4_000 : 150_000;
  const key = `bench-key-${crypto.randomUUID()}`;
  const database = await createBenchDatabase(adminUrl, documents);
  const bodiesFile = await Deno.makeTempFile({ prefix: "mgwh-bench-", suffix: ".jsonl" });
  let service: ServerProcess | undefined;
  let hello: ServerProcess | undefined;
  try {
    const postmaster = await findPostmaster(database.sql);
    if (postmaster === null) console.log("PostgreSQL's CPU is not readable from /proc here: its figures are left out");
    const reference = async (connections: number, script: string) => {
      await database.resetDocuments();
      const { result, postgres } = await measurePostgres(
        database.sql,
        postmaster,
        () => runPgbench(database.url, connections, options.durationMs, documents, script),
      );
      const run: ReferenceRun = { ...result, postgresUsPerTransaction: microsecondsPer(postgres, result.transactions) };
      return { run, otherTransactions: postgres.otherTransactions };
    };
    service = await startService(database.url, key);
    const coldStartMs = service.coldStartMs;
    console.log(`cold start: ${coldStartMs.toFixed(0)} ms from process start to the first 200`);
    if (!options.smoke) {
      await database.resetDocuments();
      await writeSignedBodies(bodiesFile, key, bodies, documents);
      await driveMeasured(service, WEBHOOK_PATH, bodiesFile, 32, 3_000);
    }
    const levels: LevelResult[] = [];
    for (const connections of options.levels) {
      const rounds: Round[] = [];
      for (let round = 0; round < options.rounds; round++) {
        await database.resetDocuments();
        await writeSignedBodies(bodiesFile, key, bodies, documents);
        const running = service;
        const drive = await measurePostgres(
          database.sql,
          postmaster,
          () => driveMeasured(running, WEBHOOK_PATH, bodiesFile, connections, options.durationMs),
        );
        const ref = await reference(connections, REFERENCE_SQL);
        const lean = await reference(connections, LEAN_REFERENCE_SQL);
        const postgresUsPerEvent = microsecondsPer(drive.postgres, drive.result.requests);
        const commits = drive.postgres.ownCommits;
        const eventsPerCommit = commits > 0 ? drive.result.requests / commits : null;
        rounds.push({
          service: { ...drive.result, postgresUsPerEvent, eventsPerCommit },
          reference: ref.run,
          lean: lean.run,
          ratio: drive.result.rps / ref.run.tps,
          leanRatio: drive.result.rps / lean.run.tps,
          postgresRatio: postgresUsPerEvent === null || lean.run.postgresUsPerTransaction === null
            ? null
            : postgresUsPerEvent / lean.run.postgresUsPerTransaction,
          otherTransactions: drive.postgres.otherTransactions + ref.otherTransactions + lean.otherTransactions,
        });
      }
      const level = summarize(connections, rounds);
      levels.push(level);
      printLevel(level);
    }
    const rss = peakRssMiB(service.pid);
    await service.stop();
    service = undefined;

    const helloLevel = options.levels.includes(CPU_LEVEL) ? CPU_LEVEL : options.levels.at(-1)!;
    hello = await startHelloServer();
    const helloRounds: MeasuredDrive[] = [];
    for (let round = 0; round < options.rounds; round++) {
      helloRounds.push(await driveMeasured(hello, "/", bodiesFile, helloLevel, options.durationMs, true));
    }
    const helloCpu = median(helloRounds.map((r) => r.cpuUsPerRequest));
    const helloRss = peakRssMiB(hello.pid);
    const serviceCpu = levels.find((l) => l.connections === helloLevel)!.service.cpuUsPerWebhook;
    console.log(
      `hello-world Deno.serve at ${helloLevel} conn: ${median(helloRounds.map((r) => r.rps)).toFixed(0)} req/s, ` +
        `${helloCpu.toFixed(1)} µs CPU per request; the service: ${serviceCpu.toFixed(1)} µs per webhook`,
    );

    const report: FullReport = {
      date: new Date().toISOString(),
      mode: options.smoke ? "smoke" : "full",
      machine: { cores: navigator.hardwareConcurrency, deno: Deno.version.deno },
      documents,
      durationMs: options.durationMs,
      coldStartMs,
      peakRssMiB: rss,
      levels,
      hello: { connections: helloLevel, rounds: helloRounds, cpuUsPerRequest: helloCpu, peakRssMiB: helloRss },
      cpuRatio: serviceCpu / helloCpu,
      postgresCpuReadable: postmaster !== null,
      targets: [],
    };
    report.targets = checkTargets(report);
    printReport(report);
    await Deno.mkdir(RESULTS, { recursive: true });
    const stem = `${RESULTS}bench-${report.mode}`;
    await Deno.writeTextFile(`${stem}.json`, JSON.stringify(report, null, 2) + "\n");
    await Deno.writeTextFile(`${stem}.svg`, renderChart(report));
    console.log(`results: ${stem}.json, ${stem}.svg`);
    const failed = levels.flatMap((l) => l.rounds).filter((r) => r.service.requests === 0 || r.service.non2xx > 0);
    if (failed.length > 0) console.error(`bench: ${failed.length} drive(s) had no requests or non-2xx answers`);
    return failed.length === 0;
  } finally {
    await service?.stop();
    await hello?.stop();
    await Deno.remove(bodiesFile);
    await database.drop();
  }
}

function summarize(connections: number, rounds: Round[]): LevelResult {
  const of = (pick: (r: Round) => number) => median(rounds.map(pick));
  const ofKnown = (pick: (r: Round) => number | null) => {
    const known = rounds.map(pick).filter((v): v is number => v !== null);
    return known.length === rounds.length ? median(known) : null;
  };
  return {
    connections,
    rounds,
    service: {
      rps: of((r) => r.service.rps),
      p50: of((r) => r.service.p50),
      p99: of((r) => r.service.p99),
      non2xx: rounds.reduce((sum, r) => sum + r.service.non2xx, 0),
      cpuUsPerWebhook: of((r) => r.service.cpuUsPerRequest),
      ranOut: rounds.some((r) => r.service.ranOut),
    },
    referenceTps: of((r) => r.reference.tps),
    ratio: of((r) => r.ratio),
    leanTps: of((r) => r.lean.tps),
    leanRatio: of((r) => r.leanRatio),
    postgres: {
      usPerEvent: ofKnown((r) => r.service.postgresUsPerEvent),
      referenceUsPerTransaction: ofKnown((r) => r.reference.postgresUsPerTransaction),
      leanUsPerTransaction: ofKnown((r) => r.lean.postgresUsPerTransaction),
      ratio: ofKnown((r) => r.postgresRatio),
    },
  };
}

/** A figure, or "n/a" when it could not be read. */
function fixed(value: number | null, digits: number): string {
  return value === null ? "n/a" : value.toFixed(digits);
}

function printLevel(level: LevelResult): void {
  const s = level.service;
  const pg = level.postgres;
  const rounds = (pick: (r: Round) => number | null) => level.rounds.map((r) => fixed(pick(r), 2)).join(", ");
  const others = level.rounds.reduce((sum, r) => sum + r.otherTransactions, 0);
  console.log(
    `${String(level.connections).padStart(4)} conn: ${s.rps.toFixed(0)} events/s, p50 ${s.p50.toFixed(2)} ms, ` +
      `p99 ${s.p99.toFixed(2)} ms, ${s.cpuUsPerWebhook.toFixed(0)} µs CPU/webhook, non-2xx ${s.non2xx}` +
      (s.ranOut ? " (ran out of bodies)" : "") + "\n" +
      `      reference ${level.referenceTps.toFixed(0)} tps, ratio ${level.ratio.toFixed(2)}x (rounds ${
        rounds((r) => r.ratio)
      }); lean reference ${level.leanTps.toFixed(0)} tps, ratio ${level.leanRatio.toFixed(2)}x (rounds ${
        rounds((r) => r.leanRatio)
      })\n` +
      `      PostgreSQL CPU: ${fixed(pg.usPerEvent, 0)} µs/event, reference ${
        fixed(pg.referenceUsPerTransaction, 0)
      } µs/tx, lean ${fixed(pg.leanUsPerTransaction, 0)} µs/tx: ${fixed(pg.ratio, 2)}x the lean (rounds ${
        rounds((r) => r.postgresRatio)
      })` + `; events per commit (rounds) ${rounds((r) => r.service.eventsPerCommit)}` +
      (others > 0 ? `; other databases ran ${others} transactions meanwhile (in these figures)` : ""),
  );
}

function printReport(report: FullReport): void {
  console.log("");
  console.log(
    `Medians of ${report.levels[0]?.rounds.length ?? 0} rounds per level, ${report.durationMs / 1000} s each:`,
  );
  console.log("");
  console.log(
    "| connections | events/s | p50 ms | p99 ms | CPU µs/webhook | non-2xx | reference tps | ratio | " +
      "lean tps | ratio vs lean | PG µs/event | PG µs/lean tx | PG ratio |",
  );
  console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const level of report.levels) {
    const s = level.service;
    const pg = level.postgres;
    console.log(
      `| ${level.connections} | ${s.rps.toFixed(0)} | ${s.p50.toFixed(2)} | ${s.p99.toFixed(2)} | ` +
        `${s.cpuUsPerWebhook.toFixed(0)} | ${s.non2xx} | ${level.referenceTps.toFixed(0)} | ${
          level.ratio.toFixed(2)
        }x | ${level.leanTps.toFixed(0)} | ${level.leanRatio.toFixed(2)}x | ${fixed(pg.usPerEvent, 0)} | ${
          fixed(pg.leanUsPerTransaction, 0)
        } | ${pg.ratio === null ? "n/a" : `${pg.ratio.toFixed(2)}x`} |`,
    );
  }
  console.log("");
  console.log(
    `hello-world Deno.serve: ${report.hello.cpuUsPerRequest.toFixed(1)} µs CPU per request at ` +
      `${report.hello.connections} connections; CPU ratio ${report.cpuRatio.toFixed(1)}x`,
  );
  console.log(
    `peak RSS (no V8 flags): the service ${report.peakRssMiB.toFixed(1)} MiB, hello-world ` +
      `${report.hello.peakRssMiB.toFixed(1)} MiB; cold start: ${report.coldStartMs.toFixed(0)} ms`,
  );
  console.log("");
  for (const target of report.targets) {
    console.log(`${target.met ? "met" : "NOT MET"}: ${target.name}: ${target.figure} (target ${target.target})`);
  }
}
