/**
 * `deno task bench:request-cpu`: the service's CPU per webhook in process
 * against a hello-world handler's per request (bench/request_path.ts: no
 * network, no database). It counts the process's CPU time (getrusage: every
 * thread, V8's garbage collector included), not wall time. On a shared
 * virtual machine even CPU time moves with the neighbours' load (by a third
 * within a minute here), and it moves both handlers alike: so they take
 * turns in short blocks (about 10 ms each, in alternating order), and the
 * figure is the median over the pairs of blocks of the webhook's CPU per
 * request over hello-world's. Prints each round, then the medians and their
 * spread ((max - min) / median); with --steps, each step's CPU per call too.
 * Writes bench/results/request-path.json.
 *
 * Options: --rounds N (3), --pairs N of blocks per round (300), --steps.
 */
import process from "node:process";
import { bodyCount, helloRequest, steps, webhookRequest } from "./request_path.ts";
import { median } from "./stats.ts";

const USAGE = `Usage: deno task bench:request-cpu [--rounds N] [--pairs N] [--steps]

The service's CPU per webhook in process (no network, no database) against a hello-world handler's per
request, in alternating blocks of about 10 ms; prints each round, the medians and their spread, and writes
bench/results/request-path.json. --rounds (default 3), --pairs of blocks per round (default 300), --steps
adds each step's CPU per call.`;

if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
  console.log(USAGE);
  Deno.exit(0);
}

const RESULTS = new URL("./results/request-path.json", import.meta.url).pathname;
/** Iterations per block: about 10 ms each on this kind of machine. */
const HELLO_BLOCK = 1_000;
const WEBHOOK_BLOCK = 200;
const STEP_BLOCK = 20_000;

function option(name: string, fallback: number): number {
  const i = Deno.args.indexOf(name);
  if (i < 0) return fallback;
  const value = Number(Deno.args[i + 1]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} takes a whole number.`);
  return value;
}

const rounds = option("--rounds", 3);
const pairs = option("--pairs", 300);
const withSteps = Deno.args.includes("--steps");

/** CPU microseconds (user + system, all threads) per call of `fn`, over `iterations` calls one after another. */
async function cpuOf(fn: () => Promise<unknown> | unknown, iterations: number): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < iterations; i++) await fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / iterations;
}

interface RoundResult {
  helloUs: number;
  webhookUs: number;
  /** The median over the pairs of blocks of webhook / hello-world. */
  ratio: number;
}

// Warm up both (the JIT, the heap's sizing), then measure.
for (let i = 0; i < 3; i++) {
  await cpuOf(helloRequest, 20 * HELLO_BLOCK);
  await cpuOf(webhookRequest, 20 * WEBHOOK_BLOCK);
}

const results: RoundResult[] = [];
console.log(`${rounds} rounds of ${pairs} pairs of blocks, in turns; CPU µs per request:`);
for (let round = 0; round < rounds; round++) {
  const hello: number[] = [], webhook: number[] = [], ratios: number[] = [];
  for (let pair = 0; pair < pairs; pair++) {
    const first = pair % 2 === 0;
    const w1 = first ? await cpuOf(webhookRequest, WEBHOOK_BLOCK) : NaN;
    const h = await cpuOf(helloRequest, HELLO_BLOCK);
    const w = first ? w1 : await cpuOf(webhookRequest, WEBHOOK_BLOCK);
    hello.push(h);
    webhook.push(w);
    ratios.push(w / h);
  }
  const result = { helloUs: mean(hello), webhookUs: mean(webhook), ratio: median(ratios) };
  results.push(result);
  console.log(
    `round ${round + 1}: hello-world ${result.helloUs.toFixed(2)} µs, webhook ${result.webhookUs.toFixed(2)} µs, ` +
      `ratio ${result.ratio.toFixed(2)}x`,
  );
}

function mean(values: number[]): number {
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}

const summary = (pick: (r: RoundResult) => number) => {
  const values = results.map(pick);
  const m = median(values);
  return { median: m, spread: (Math.max(...values) - Math.min(...values)) / m, rounds: values };
};
const report = {
  date: new Date().toISOString(),
  machine: { cores: navigator.hardwareConcurrency, deno: Deno.version.deno },
  helloUsPerRequest: summary((r) => r.helloUs),
  webhookUsPerRequest: summary((r) => r.webhookUs),
  ratio: summary((r) => r.ratio),
  steps: [] as { name: string; usPerCall: number }[],
};
const percent = (spread: number) => `${(spread * 100).toFixed(1)}%`;
console.log(
  `medians: hello-world ${report.helloUsPerRequest.median.toFixed(2)} µs (spread ${
    percent(report.helloUsPerRequest.spread)
  }), webhook ${report.webhookUsPerRequest.median.toFixed(2)} µs (spread ${
    percent(report.webhookUsPerRequest.spread)
  }); webhook / hello-world ${report.ratio.median.toFixed(2)}x (spread ${percent(report.ratio.spread)}; target ≤ 6x)`,
);

if (withSteps) {
  console.log("each step alone, CPU µs per call:");
  for (const [name, fn] of steps) {
    let i = 0;
    const call = () => fn(i = (i + 1) % bodyCount);
    await cpuOf(call, STEP_BLOCK / 4);
    const usPerCall = await cpuOf(call, STEP_BLOCK);
    report.steps.push({ name, usPerCall });
    console.log(`  ${name}: ${usPerCall.toFixed(2)} µs`);
  }
}

await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
await Deno.writeTextFile(RESULTS, JSON.stringify(report, null, 2) + "\n");
console.log(`results: ${RESULTS}`);
