import type { Sql } from "postgres";
import { type Config, loadConfig } from "../../src/config/service_config.ts";
import { connectPostgres } from "../../src/db/connect_postgres.ts";
import { migrate } from "../../src/db/migrate.ts";
import { setLogWriter } from "../../src/reporting/log.ts";
import { startService } from "../../src/start_service.ts";
import { createTestDatabase, type TestDatabase } from "./test_database.ts";

/** A service on a fresh database, listening on a free loopback port. */
export interface TestService {
  url: string;
  sql: Sql;
  db: TestDatabase;
  key: string;
  config: Config;
  /** Log lines written since start, parsed. */
  logs: Record<string, unknown>[];
  /** Raw log lines, to search for things that must never appear. */
  rawLogs: string[];
  close(): Promise<void>;
}

/** Starts the service in-process; `env` overrides configuration variables, `options` go to startService. */
export async function startTestService(
  env: Record<string, string> = {},
  db?: TestDatabase,
  options: { pruneOnTimer?: boolean } = {},
): Promise<TestService> {
  const database = db ?? await createTestDatabase();
  const key = `test-key-${crypto.randomUUID()}`;
  const config = loadConfig((name) =>
    ({
      DATABASE_URL: database.url,
      MAILGUN_WEBHOOK_SIGNING_KEY: key,
      PORT: "0",
      LISTEN_HOST: "127.0.0.1",
      DB_POOL_MAX: String(database.poolMax),
      BATCH_IN_FLIGHT: database.kind === "embedded" ? "1" : "4",
      ...env,
    })[name]
  );
  const setup = connectPostgres(database.url, { max: 1, connectTimeoutMs: 5000, prepare: true });
  await migrate(setup);
  await setup.end();
  const rawLogs: string[] = [];
  const logs: Record<string, unknown>[] = [];
  const previous = setLogWriter((line) => {
    rawLogs.push(line);
    logs.push(JSON.parse(line));
  });
  const service = await startService(config, options);
  return {
    url: service.url,
    sql: service.sql,
    db: database,
    key,
    config,
    logs,
    rawLogs,
    async close() {
      await service.shutdown();
      setLogWriter(previous);
      if (!db) await database.drop();
    },
  };
}

/** Inserts a document (or tenant) row with only the two columns the API sets; returns its id. */
export async function insertRow(
  sql: Sql,
  table: "documents" | "tenants",
  messageId: string,
  status = "SENT",
): Promise<number> {
  const [row] = table === "documents"
    ? await sql`insert into documents (email_message_id, email_status) values (${messageId}, ${status}) returning id`
    : await sql`insert into tenants (email_message_id, email_status) values (${messageId}, ${status}) returning id`;
  return Number(row.id);
}

/** A row's status and trail. */
export async function rowState(sql: Sql, table: "documents" | "tenants", id: number) {
  const [row] = table === "documents"
    ? await sql`select email_status, email_status_at from documents where id = ${id}`
    : await sql`select email_status, email_status_at from tenants where id = ${id}`;
  const events = table === "documents"
    ? await sql`select type, mailgun_event_id, extract(epoch from event_timestamp)::float8 as ts, recipient, severity, reason
                from email_events where document_id = ${id} order by mailgun_event_id`
    : await sql`select type, mailgun_event_id, extract(epoch from event_timestamp)::float8 as ts, recipient, severity, reason
                from email_events where tenant_id = ${id} order by mailgun_event_id`;
  return { status: row.email_status as string, statusAt: row.email_status_at as Date | null, events };
}

/** A unique message id, as Mailgun's send API returns it (with angle brackets). */
export function newMessageId(): string {
  return `<${Date.now()}.${crypto.randomUUID().slice(0, 12)}@mg.comprobify.test>`;
}
