/** One of issue 12's goals, checked against a run's figures. */
export interface TargetCheck {
  name: string;
  figure: string;
  target: string;
  met: boolean;
}

/** The goals of a full run (the scale run checks its own). */
const THROUGHPUT_RATIO_MIN = 1.0;
/** Issue 22: PostgreSQL's CPU per event at most a third of its CPU per lean reference transaction. */
const POSTGRES_CPU_RATIO_MAX = 0.33;
const POSTGRES_CPU_LEVEL = 32;
const CPU_RATIO_MAX = 6;
const P99_MAX_MS = 25;
const P99_LEVEL = 32;
const RSS_MAX_MIB = 150;

/** The figures the checks read. */
interface CheckedRun {
  levels: {
    connections: number;
    service: { p99: number };
    ratio: number;
    leanRatio: number;
    postgres: { ratio: number | null };
  }[];
  cpuRatio: number;
  peakRssMiB: number;
}

/** Checks a full run against the goals; levels the run did not drive are left out. */
export function checkTargets(run: CheckedRun): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const connections of [32, 128]) {
    const level = run.levels.find((l) => l.connections === connections);
    if (!level) continue;
    checks.push({
      name: `throughput vs pgbench at ${connections} connections`,
      figure: `${level.ratio.toFixed(2)}x`,
      target: `≥ ${THROUGHPUT_RATIO_MIN.toFixed(1)}x`,
      met: level.ratio >= THROUGHPUT_RATIO_MIN,
    });
    checks.push({
      name: `throughput vs the lean reference at ${connections} connections`,
      figure: `${level.leanRatio.toFixed(2)}x`,
      target: `≥ ${THROUGHPUT_RATIO_MIN.toFixed(1)}x`,
      met: level.leanRatio >= THROUGHPUT_RATIO_MIN,
    });
  }
  const postgresRatio = run.levels.find((l) => l.connections === POSTGRES_CPU_LEVEL)?.postgres.ratio;
  if (postgresRatio !== undefined && postgresRatio !== null) {
    checks.push({
      name: `PostgreSQL CPU per event vs per lean reference transaction at ${POSTGRES_CPU_LEVEL} connections`,
      figure: `${postgresRatio.toFixed(2)}x`,
      target: `≤ ${POSTGRES_CPU_RATIO_MAX}x`,
      met: postgresRatio <= POSTGRES_CPU_RATIO_MAX,
    });
  }
  checks.push({
    name: "CPU per webhook vs hello-world Deno.serve",
    figure: `${run.cpuRatio.toFixed(1)}x`,
    target: `≤ ${CPU_RATIO_MAX}x`,
    met: run.cpuRatio <= CPU_RATIO_MAX,
  });
  const p99Level = run.levels.find((l) => l.connections === P99_LEVEL);
  if (p99Level) {
    checks.push({
      name: `p99 at ${P99_LEVEL} connections`,
      figure: `${p99Level.service.p99.toFixed(1)} ms`,
      target: `≤ ${P99_MAX_MS} ms`,
      met: p99Level.service.p99 <= P99_MAX_MS,
    });
  }
  checks.push({
    name: "peak RSS with no V8 flags",
    figure: `${run.peakRssMiB.toFixed(1)} MiB`,
    target: `≤ ${RSS_MAX_MIB} MiB`,
    met: run.peakRssMiB <= RSS_MAX_MIB,
  });
  return checks;
}
