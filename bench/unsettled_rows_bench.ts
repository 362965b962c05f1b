/**
 * `deno task bench-unsettled`: how fast reconcile finds the rows still
 * unsettled, on a large table, on the real PostgreSQL of DATABASE_URL.
 *
 * Creates a scratch database beside the one DATABASE_URL names, migrates it
 * up to 0004 (the schema before reconcile's indexes), fills it with
 * generate_series (DOCUMENTS documents, 98% settled with one trail entry
 * each, 2% still SENT; a tenth as many tenants alike), then applies 0005 and
 * 0006 (timed: the concurrent index builds of a deployment on such a
 * table), and times:
 * - the query reconcile used before 0006 (every document and tenant, with
 *   a `not exists` on the trail), for comparison;
 * - one page of findUnsettledRows (1,000 rows) and the whole pass reconcile
 *   makes over every unsettled row, page by page.
 * Prints the figures (median of RUNS) and drops the scratch database.
 *
 * `deno task bench-unsettled --documents 200000` for a quicker run.
 */
import postgres from "postgres";
import { z } from "zod";
import { textVariable } from "../src/config/env_variables.ts";
import { readEnv } from "../src/config/read_env.ts";
import { findUnsettledRows, type UnsettledRow } from "../src/db/find_unsettled_rows_query.ts";
import { migrate, MIGRATIONS_DIR } from "../src/db/migrate.ts";

if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
  console.log(`Usage: deno task bench-unsettled [--documents 2000000]

Times reconcile's search for unsettled rows on a scratch database created beside DATABASE_URL's
(dropped at the end), filled with --documents documents (default 2,000,000) and a tenth as many tenants.`);
  Deno.exit(0);
}

const DOCUMENTS = Number(argument("--documents") ?? 2_000_000);
const TENANTS = Math.floor(DOCUMENTS / 10);
const RUNS = 5;
const PAGE = 1000;

function argument(name: string): string | undefined {
  const at = Deno.args.indexOf(name);
  return at < 0 ? undefined : Deno.args[at + 1];
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const start = performance.now();
  const result = await fn();
  return [performance.now() - start, result];
}

async function median(fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push((await timed(fn))[0]);
  return times.sort((a, b) => a - b)[Math.floor(RUNS / 2)];
}

const adminUrl = readEnv(z.object({ DATABASE_URL: textVariable() })).DATABASE_URL;
if (!adminUrl) {
  console.error("DATABASE_URL must name a PostgreSQL server (a scratch database is created beside it).");
  Deno.exit(2);
}
const name = `mgwh_bench_unsettled_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
await admin.unsafe(`create database ${name}`);
const url = new URL(adminUrl);
url.pathname = `/${name}`;
const sql = postgres(url.toString(), { max: 2, onnotice: () => {} });
try {
  const before = await Deno.makeTempDir({ prefix: "mgwh-bench-migrations-" });
  for await (const entry of Deno.readDir(MIGRATIONS_DIR)) {
    if (entry.name.endsWith(".sql") && entry.name < "0005") {
      await Deno.copyFile(new URL(entry.name, MIGRATIONS_DIR), `${before}/${entry.name}`);
    }
  }
  await migrate(sql, new URL(`file://${before}/`));
  await Deno.remove(before, { recursive: true });

  console.log(`Filling ${DOCUMENTS} documents and ${TENANTS} tenants (98% settled, with a trail entry each)...`);
  const [fillMs] = await timed(async () => {
    // Message ids as Mailgun makes them: the UTC send time (spread over 60 days), a dot, a hex part.
    await sql`
      insert into documents (email_message_id, email_status, email_status_at)
      select '<' || to_char(now() - (g % 5184000) * interval '1 second', 'YYYYMMDDHH24MISS')
             || '.' || md5(g::text) || '@mg.bench.test>',
             case when g % 50 = 0 then 'SENT' when g % 50 = 1 then 'FAILED' else 'DELIVERED' end,
             case when g % 50 = 0 then null else now() end
      from generate_series(1, ${DOCUMENTS}::int) g
    `;
    await sql`
      insert into tenants (email_message_id, email_status, email_status_at)
      select '<' || to_char(now() - (g % 5184000) * interval '1 second', 'YYYYMMDDHH24MISS')
             || '.' || md5(g::text) || '@mg.bench.test>',
             case when g % 50 = 0 then 'SENT' else 'DELIVERED' end,
             case when g % 50 = 0 then null else now() end
      from generate_series(1, ${TENANTS}::int) g
    `;
    await sql`
      insert into email_events (document_id, type, mailgun_event_id, event_timestamp, event_data)
      select id, case when email_status = 'FAILED' then 'EMAIL_FAILED' else 'EMAIL_DELIVERED' end,
             md5(id::text), email_status_at, '{}'
      from documents where email_status <> 'SENT'
    `;
    await sql`
      insert into email_events (tenant_id, type, mailgun_event_id, event_timestamp, event_data)
      select id, 'EMAIL_DELIVERED', md5(id::text), email_status_at, '{}'
      from tenants where email_status <> 'SENT'
    `;
    await sql`vacuum analyze`;
  });
  console.log(`  filled in ${(fillMs / 1000).toFixed(1)} s`);

  const [migrateMs, applied] = await timed(() => migrate(sql));
  await sql`analyze`;
  console.log(`Migrations ${applied.join(", ")} (concurrent index builds) took ${(migrateMs / 1000).toFixed(1)} s`);

  const [{ unsettled }] = await sql`
    select (select count(*) from documents where email_status = 'SENT')
         + (select count(*) from tenants where email_status = 'SENT') as unsettled
  `;
  const oldQueryMs = await median(() =>
    sql`
      select * from (
        select 'documents' as table_name, d.id, d.email_message_id, d.email_status
        from documents d
        where nullif(btrim(d.email_message_id, ' <>'), '') is not null
          and (d.email_status is null or d.email_status = 'SENT'
               or not exists (select 1 from email_events e where e.document_id = d.id))
        union all
        select 'tenants', t.id, t.email_message_id, t.email_status
        from tenants t
        where nullif(btrim(t.email_message_id, ' <>'), '') is not null
          and (t.email_status is null or t.email_status = 'SENT'
               or not exists (select 1 from email_events e where e.tenant_id = t.id))
      ) unsettled
      order by id, table_name
      limit 1000
    `
  );
  const pageMs = await median(() => findUnsettledRows(sql, "documents", null, PAGE));
  let rowsSeen = 0;
  const passMs = await median(async () => {
    rowsSeen = 0;
    for (const table of ["documents", "tenants"] as const) {
      let afterId: string | null = null;
      while (true) {
        const rows: UnsettledRow[] = await findUnsettledRows(sql, table, afterId, PAGE);
        rowsSeen += rows.length;
        if (rows.length < PAGE) break;
        afterId = rows[rows.length - 1].id;
      }
    }
  });
  const [plan] = await sql`
    explain (format json) select id, email_message_id, email_status from documents
    where mailgun_webhook.status_rank(email_status) < 2 and nullif(btrim(email_message_id, ' <>'), '') is not null
      and id > 0 order by id limit 1000
  `;
  const planNode = (plan["QUERY PLAN"] as { Plan: { Plans?: { "Node Type": string; "Index Name"?: string }[] } }[])[0]
    .Plan.Plans?.[0];
  console.log(
    `Unsettled rows: ${unsettled} of ${DOCUMENTS + TENANTS} (plan: ${planNode?.["Node Type"]} on ${
      planNode?.["Index Name"]
    })`,
  );
  console.log(`  previous query (first 1,000, every row read): ${oldQueryMs.toFixed(1)} ms`);
  console.log(`  findUnsettledRows, one page of ${PAGE}:        ${pageMs.toFixed(1)} ms`);
  console.log(`  every unsettled row, page by page (${rowsSeen}): ${passMs.toFixed(1)} ms`);
} finally {
  await sql.end();
  await admin.unsafe(`drop database if exists ${name} with (force)`);
  await admin.end();
}
