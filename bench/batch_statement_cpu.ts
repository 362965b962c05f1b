/**
 * The batch statement alone, A/B: PostgreSQL's CPU per event of writeBatch
 * (src/db/write_batch_query.ts) from two source trees, taking turns on one
 * connection each, with no service, no HTTP and no load generator in the way.
 *
 * Each tree gets its own database, migrated by that tree's own migrations and
 * seeded with the bench's documents; its batches are made from the bench's
 * signed bodies (70/10/10/10, random documents), parsed as the service parses
 * them, and written by that tree's writeBatch through a postgres.js
 * connection set up as the service's (prepared, generic plan). The figure is
 * the CPU of that connection's backend alone (/proc/<pid>/stat), so other
 * databases' work on a shared machine does not land in it; the commits' WAL
 * flushes are the backend's own (synchronous_commit on).
 *
 *   deno run --allow-net=127.0.0.1 --allow-env --allow-read --allow-run bench/batch_statement_cpu.ts \
 *     --a /path/to/tree-a --b /path/to/tree-b [--batch 32] [--rounds 20] [--events 3000]
 *
 * Prints each round's µs per event for A and B, then the median ratio B/A and
 * the spread of the rounds' ratios.
 */
import postgres, { type Sql } from "postgres";
import { batchRowOf } from "../src/apply/apply_event.ts";
import { parseEventData } from "../src/mailgun/parse_event_data.ts";
import { parseWebhookBody } from "../src/mailgun/parse_webhook_body.ts";
import { seedDocuments } from "./bench_database.ts";
import { cpuSeconds } from "./proc_stats.ts";
import { signedBodies } from "./signed_bodies.ts";
import { median } from "./stats.ts";

interface Variant {
  name: string;
  root: string;
  sql: Sql;
  pid: number;
  // deno-lint-ignore no-explicit-any
  writeBatch: (sql: Sql, rows: any[], lockTimeoutMs: number) => Promise<unknown[]>;
  dbName: string;
}

const DOCUMENTS = 100_000;
const args = Deno.args;
const option = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const batchSize = Number(option("--batch", "32"));
const rounds = Number(option("--rounds", "20"));
const eventsPerRound = Number(option("--events", "3000"));
const adminUrl = Deno.env.get("DATABASE_URL") ?? "postgres://root@127.0.0.1:5432/test";
const roots = [option("--a", "/work/main"), option("--b", ".")].map((root) => Deno.realPathSync(root));

const encoder = new TextEncoder();
const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });

async function openVariant(name: string, root: string): Promise<Variant> {
  const dbName = `mgwh_stmt_${name.toLowerCase()}_${Date.now()}`;
  await admin.unsafe(`create database ${dbName}`);
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  const setup = postgres(url.toString(), { max: 1, onnotice: () => {} });
  const { migrate } = await import(`file://${root}/src/db/migrate.ts`);
  await migrate(setup, new URL(`file://${root}/migrations/`));
  await seedDocuments(setup, 1, DOCUMENTS);
  await setup`checkpoint`;
  await setup.end();
  const sql = postgres(url.toString(), {
    max: 1,
    prepare: true,
    onnotice: () => {},
    connection: { plan_cache_mode: "force_generic_plan", jit: "off" },
  });
  const [{ pid }] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
  const { writeBatch } = await import(`file://${root}/src/db/write_batch_query.ts`);
  return { name, root, sql, pid, writeBatch, dbName };
}

function makeRows(count: number) {
  const key = "batch-statement-key";
  return signedBodies(key, count, DOCUMENTS).map((body) => {
    const parsedBody = parseWebhookBody(encoder.encode(body));
    const parsed = parseEventData(parsedBody.eventData);
    return batchRowOf(parsed, { token: crypto.randomUUID(), signedAt: Math.floor(Date.now() / 1000) });
  });
}

async function runRound(variant: Variant): Promise<number> {
  const rows = makeRows(eventsPerRound);
  const before = cpuSeconds(variant.pid);
  for (let i = 0; i < rows.length; i += batchSize) {
    await variant.writeBatch(variant.sql, rows.slice(i, i + batchSize), 1000);
  }
  const after = cpuSeconds(variant.pid);
  return ((after - before) * 1e6) / rows.length;
}

const variants = [await openVariant("A", roots[0]), await openVariant("B", roots[1])];
try {
  // A warm-up round each: the plan, the catalog caches, the documents' pages.
  for (const variant of variants) await runRound(variant);
  const ratios: number[] = [];
  const figures: Record<string, number[]> = { A: [], B: [] };
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    const result: Record<string, number> = {};
    for (const variant of order) result[variant.name] = await runRound(variant);
    figures.A.push(result.A);
    figures.B.push(result.B);
    ratios.push(result.B / result.A);
    console.log(
      `round ${round + 1}: A ${result.A.toFixed(1)} µs/event, B ${result.B.toFixed(1)} µs/event, B/A ${
        (result.B / result.A).toFixed(3)
      }`,
    );
  }
  const m = median(ratios);
  console.log(
    `batch ${batchSize}, ${rounds} rounds of ${eventsPerRound} events: A ${median(figures.A).toFixed(1)}, B ${
      median(figures.B).toFixed(1)
    } µs/event (backend CPU, medians); B/A median ${m.toFixed(3)}, min ${Math.min(...ratios).toFixed(3)}, max ${
      Math.max(...ratios).toFixed(3)
    }`,
  );
} finally {
  for (const variant of variants) {
    await variant.sql.end();
    await admin.unsafe(`drop database if exists ${variant.dbName} with (force)`);
  }
  await admin.end();
}
