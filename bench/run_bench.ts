/**
 * `deno task bench`: the service against pgbench, on the same PostgreSQL, in one run.
 *
 * Starts the service (exactly as the start task does) on a fresh
 * database with 100,000 documents, drives it with signed webhooks (70%
 * delivered, 10% temporary failures, 10% permanent failures, 10%
 * complaints, on random documents) at 1, 8, 32 and 128 connections, runs
 * `pgbench -M prepared` on bench/reference.sql (the same database work per
 * event, as one statement) at the same connection counts, and prints and
 * writes (bench/results/) the figures and a chart.
 *
 * `deno task bench --smoke`: a few seconds, for CI: checks that it all works.
 */
import postgres from "postgres";
import { migrate } from "../src/db/migrate.ts";
import { signWebhook } from "../src/mailgun/sign_webhook.ts";
import { startTaskFlags } from "../tests/helpers/start_task_flags.ts";
import { renderChart } from "./render_chart.ts";

const SMOKE = Deno.args.includes("--smoke");
const DOCUMENTS = SMOKE ? 2_000 : 100_000;
const LEVELS = levelsArgument() ?? (SMOKE ? [1, 8] : [1, 8, 32, 128]);
const DURATION_MS = SMOKE ? 1_000 : 10_000;
const WARMUP_MS = SMOKE ? 0 : 3_000;
/** Bodies signed per level; a run that uses them all up says so. */
const BODIES = SMOKE ? 4_000 : 150_000;
const PROJECT = new URL("../", import.meta.url).pathname;
const RESULTS = new URL("./results/", import.meta.url).pathname;
/** The service runs exactly as `deno task start` runs it. */
const START_FLAGS = startTaskFlags();
const PAYLOADS = {
  delivered: JSON.parse(await Deno.readTextFile(`${PROJECT}tests/payloads/delivered.event-data.json`)),
  permanent: JSON.parse(await Deno.readTextFile(`${PROJECT}tests/payloads/failed-permanent.event-data.json`)),
  temporary: JSON.parse(await Deno.readTextFile(`${PROJECT}tests/payloads/failed-temporary.event-data.json`)),
  complained: JSON.parse(await Deno.readTextFile(`${PROJECT}tests/payloads/complained.event-data.json`)),
};

/**
 * pgbench opens one server connection per client; PostgreSQL's default
 * max_connections is 100. The reference's throughput is flat long before.
 */
const PGBENCH_MAX_CLIENTS = 64;

let eventSequence = 0;

interface LoadResult {
  requests: number;
  non2xx: number;
  errors: number;
  statuses: Record<string, number>;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  ranOut: boolean;
}

interface LevelResult {
  connections: number;
  service: LoadResult;
  referenceTps: number;
  ratio: number;
}

const adminUrl = Deno.env.get("DATABASE_URL");
if (!adminUrl) {
  console.error("DATABASE_URL is required: the benchmark runs on a real PostgreSQL (it creates its own database).");
  Deno.exit(1);
}

const name = `mgwh_bench_${Date.now()}`;
const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
await admin.unsafe(`create database ${name}`);
const url = new URL(adminUrl);
url.pathname = `/${name}`;
const databaseUrl = url.toString();
const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
const key = `bench-key-${crypto.randomUUID()}`;
let service: Deno.ChildProcess | undefined;
let exitCode = 0;

try {
  await migrate(sql);
  await sql`
    insert into documents (email_message_id, email_status)
    select '<bench-' || g || '@mg.bench.test>', 'SENT' from generate_series(1, ${DOCUMENTS}::int) g
  `;
  await sql`vacuum analyze documents`;

  const port = freePort();
  const serviceUrl = `http://127.0.0.1:${port}`;
  const spawnedAt = performance.now();
  service = new Deno.Command(Deno.execPath(), {
    args: ["run", ...START_FLAGS, "main.ts"],
    cwd: PROJECT,
    env: {
      DATABASE_URL: databaseUrl,
      MAILGUN_WEBHOOK_SIGNING_KEY: key,
      PORT: String(port),
      LISTEN_HOST: "127.0.0.1",
      // Tuning variables pass through, so that a run can try other values.
      ...Object.fromEntries(
        ["DB_POOL_MAX", "BATCH_MAX", "BATCH_IN_FLIGHT"].flatMap((name) => {
          const value = Deno.env.get(name);
          return value === undefined ? [] : [[name, value]];
        }),
      ),
    },
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const coldStartMs = await firstOk(serviceUrl, spawnedAt);
  console.log(`cold start: ${coldStartMs.toFixed(0)} ms from process start to the first 200`);

  if (WARMUP_MS > 0) {
    await resetDocuments();
    await drive(serviceUrl, 32, WARMUP_MS);
  }
  const levels: LevelResult[] = [];
  for (const connections of LEVELS) {
    await resetDocuments();
    const result = await drive(serviceUrl, connections, DURATION_MS);
    await resetDocuments();
    const referenceTps = await pgbench(connections, DURATION_MS);
    levels.push({ connections, service: result, referenceTps, ratio: result.rps / referenceTps });
    console.log(
      `${String(connections).padStart(4)} conn: ${result.rps.toFixed(0)} events/s, p50 ${result.p50.toFixed(2)} ms, ` +
        `p99 ${result.p99.toFixed(2)} ms, non-2xx ${result.non2xx}, reference ${referenceTps.toFixed(0)} tps, ` +
        `ratio ${(result.rps / referenceTps).toFixed(2)}x${result.ranOut ? " (ran out of bodies)" : ""}`,
    );
  }
  const peakRssMiB = peakRss(service.pid) / 1024;
  const report = {
    date: new Date().toISOString(),
    mode: SMOKE ? "smoke" : "full",
    machine: { cores: navigator.hardwareConcurrency, deno: Deno.version.deno },
    documents: DOCUMENTS,
    durationMs: DURATION_MS,
    coldStartMs,
    peakRssMiB,
    levels,
  };
  printTable(report.levels, coldStartMs, peakRssMiB);
  await Deno.mkdir(RESULTS, { recursive: true });
  const stem = `${RESULTS}bench-${report.mode}`;
  await Deno.writeTextFile(`${stem}.json`, JSON.stringify(report, null, 2) + "\n");
  await Deno.writeTextFile(`${stem}.svg`, renderChart(report));
  console.log(`results: ${stem}.json, ${stem}.svg`);
  const failed = levels.filter((level) => level.service.requests === 0 || level.service.non2xx > 0);
  if (failed.length > 0) {
    console.error(`bench: ${failed.length} level(s) had no requests or non-2xx answers`);
    exitCode = 1;
  }
} finally {
  if (service) {
    service.kill("SIGTERM");
    await service.status;
  }
  await sql.end();
  await admin.unsafe(`drop database if exists ${name} with (force)`);
  await admin.end();
}
Deno.exit(exitCode);

/** `--levels 8,32`: only these connection counts. */
function levelsArgument(): number[] | undefined {
  const i = Deno.args.indexOf("--levels");
  return i < 0 ? undefined : Deno.args[i + 1].split(",").map(Number);
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** Polls with a signed webhook until the first 200; returns ms since `since`. */
async function firstOk(base: string, since: number): Promise<number> {
  const body = JSON.stringify({ signature: signWebhook(key), "event-data": eventFor(1, "delivered") });
  for (let tries = 0; tries < 10_000; tries++) {
    try {
      const response = await fetch(`${base}/v1/mailgun/webhook`, { method: "POST", body });
      await response.body?.cancel();
      if (response.status === 200) return performance.now() - since;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error("The service never answered 200.");
}

function eventFor(doc: number, kind: keyof typeof PAYLOADS) {
  const data = structuredClone(PAYLOADS[kind]);
  data.id = `bench-${++eventSequence}-${Math.random().toString(36).slice(2, 10)}`;
  data.timestamp = Date.now() / 1000 - Math.random() * 3600;
  data.message.headers["message-id"] = `bench-${doc}@mg.bench.test`;
  return data;
}

/** Signs `BODIES` webhooks (each with its own token) into a file for the load generator. */
async function writeBodies(path: string): Promise<void> {
  const lines: string[] = [];
  for (let i = 0; i < BODIES; i++) {
    const roll = Math.random() * 10;
    const kind = roll < 7 ? "delivered" : roll < 8 ? "temporary" : roll < 9 ? "permanent" : "complained";
    const doc = 1 + Math.floor(Math.random() * DOCUMENTS);
    lines.push(JSON.stringify({ signature: signWebhook(key), "event-data": eventFor(doc, kind) }));
  }
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
}

async function drive(base: string, connections: number, durationMs: number): Promise<LoadResult> {
  const bodiesFile = await Deno.makeTempFile({ prefix: "mgwh-bench-", suffix: ".jsonl" });
  try {
    await writeBodies(bodiesFile);
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net=127.0.0.1",
        `--allow-read=${bodiesFile}`,
        `${PROJECT}bench/load_generator.ts`,
        JSON.stringify({ url: `${base}/v1/mailgun/webhook`, bodiesFile, connections, durationMs }),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!output.success) throw new Error("The load generator failed.");
    return JSON.parse(new TextDecoder().decode(output.stdout));
  } finally {
    await Deno.remove(bodiesFile);
  }
}

async function pgbench(connections: number, durationMs: number): Promise<number> {
  const output = await new Deno.Command("pgbench", {
    args: [
      "-n",
      "-M",
      "prepared",
      "-c",
      String(Math.min(connections, PGBENCH_MAX_CLIENTS)),
      "-j",
      String(Math.min(connections, 2)),
      "-T",
      String(Math.max(1, Math.round(durationMs / 1000))),
      "-D",
      `documents=${DOCUMENTS}`,
      "-f",
      `${PROJECT}bench/reference.sql`,
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

/** Puts every document back to SENT, so that each run does the same amount of climbing. */
async function resetDocuments(): Promise<void> {
  await sql`update documents set email_status = 'SENT', email_status_at = null where email_status <> 'SENT'`;
  await sql`vacuum analyze documents`;
  await sql`checkpoint`;
}

/** Peak resident set size of a process, KiB (Linux). */
function peakRss(pid: number): number {
  // Deno reads /proc only with --allow-all; cat needs no more than --allow-run.
  const output = new Deno.Command("cat", { args: [`/proc/${pid}/status`], stdout: "piped" }).outputSync();
  const status = new TextDecoder().decode(output.stdout);
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
}

function printTable(levels: LevelResult[], coldStartMs: number, peakRssMiB: number): void {
  console.log("");
  console.log("| connections | events/s | p50 ms | p99 ms | non-2xx | reference tps | ratio |");
  console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const level of levels) {
    const s = level.service;
    console.log(
      `| ${level.connections} | ${s.rps.toFixed(0)} | ${s.p50.toFixed(2)} | ${s.p99.toFixed(2)} | ${s.non2xx} | ` +
        `${level.referenceTps.toFixed(0)} | ${level.ratio.toFixed(2)}x |`,
    );
  }
  console.log("");
  console.log(`server peak RSS: ${peakRssMiB.toFixed(1)} MiB; cold start: ${coldStartMs.toFixed(0)} ms`);
}
