/**
 * `deno task bench`: the service against pgbench, on the same PostgreSQL, in one run.
 *
 * Starts the service (exactly as the start task does) on a fresh database
 * with 100,000 documents, drives it with signed webhooks at 1, 8, 32 and 128
 * connections (3 rounds each, each round followed by `pgbench -M prepared`
 * on bench/reference.sql: the same database work per event, as one
 * statement), then drives a hello-world `Deno.serve` the same way, and
 * reports the throughput ratio, the CPU per webhook against hello-world's
 * per request (from /proc/<pid>/stat), p99 and peak RSS, against issue 12's
 * targets. Writes bench/results/bench-<mode>.json and .svg.
 *
 * `--smoke`: a few seconds, for CI: checks that it all works.
 * `--scale`: throughput as the tables grow to 10,000,000 documents and
 * tokens, and p99 while a day of tokens is pruned (bench/scale_bench.ts);
 * `--scale-factor 0.1` makes the tables smaller.
 * `--latency`: p99 at a fixed rate of half each reference's throughput, and
 * shedding and RSS at 2x and 10x the sustainable rate (bench/latency_bench.ts).
 */
import { parseBenchOptions } from "./bench_options.ts";
import { runFullBench } from "./full_bench.ts";
import { runLatencyBench } from "./latency_bench.ts";
import { runScaleBench } from "./scale_bench.ts";

const USAGE =
  `Usage: deno task bench [--smoke] [--scale [--scale-factor F] | --latency] [--levels 1,8,32] [--rounds N] [--seconds S]

Drives the service and pgbench on a fresh database of the PostgreSQL of DATABASE_URL (loopback only)
and writes bench/results/bench-<mode>.json and .svg. --smoke: a few seconds, for CI.
--scale: large tables and pruning under load. --latency: p99 at a fixed rate, shedding and RSS under overload.`;

if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
  console.log(USAGE);
  Deno.exit(0);
}

const adminUrl = Deno.env.get("DATABASE_URL");
if (!adminUrl) {
  console.error("DATABASE_URL is required: the benchmark runs on a real PostgreSQL (it creates its own database).");
  Deno.exit(1);
}
const options = parseBenchOptions(Deno.args);
const ok = options.scale
  ? await runScaleBench(adminUrl, options)
  : options.latency
  ? await runLatencyBench(adminUrl, options)
  : await runFullBench(adminUrl, options);
Deno.exit(ok ? 0 : 1);
