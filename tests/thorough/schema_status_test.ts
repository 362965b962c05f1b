/**
 * Misconfiguration speaks: /healthz and the start-up line say "unmigrated" or
 * "unreachable", and say when documents and tenants are stand-ins created by
 * our own migration (the wrong database) rather than the API's tables.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { loadConfig } from "../../src/config/service_config.ts";
import { migrate } from "../../src/db/migrate.ts";
import { setLogWriter } from "../../src/reporting/log.ts";
import { startService } from "../../src/start_service.ts";
import { createTestDatabase } from "../helpers/test_database.ts";
import { startTestService } from "../helpers/test_service.ts";

const PASSWORD = "s3cret-pw_Zq";

async function serviceOn(databaseUrl: string) {
  const config = loadConfig((name) =>
    ({
      DATABASE_URL: databaseUrl,
      MAILGUN_WEBHOOK_SIGNING_KEY: "schema-status-test-key",
      PORT: "0",
      LISTEN_HOST: "127.0.0.1",
      DB_POOL_MAX: "1",
      DB_CONNECT_TIMEOUT_MS: "500",
      DB_QUERY_TIMEOUT_MS: "1500",
    })[name]
  );
  const lines: string[] = [];
  const previous = setLogWriter((line) => lines.push(line));
  const service = await startService(config);
  return {
    service,
    lines,
    /** The first log line whose msg matches, waiting for it at most 10 s. */
    async line(msg: RegExp): Promise<Record<string, unknown>> {
      for (let i = 0; i < 100; i++) {
        const found = lines.map((line) => JSON.parse(line)).find((line) => msg.test(line.msg));
        if (found) return found;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`no log line ${msg} in: ${lines.join("\n")}`);
    },
    async close() {
      await service.shutdown();
      setLogWriter(previous);
    },
  };
}

/** The first parsed log line whose msg matches, waiting for it at most 10 s. */
async function waitForLine(logs: Record<string, unknown>[], msg: RegExp): Promise<Record<string, unknown>> {
  for (let i = 0; i < 100; i++) {
    const found = logs.find((line) => msg.test(String(line.msg)));
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no log line ${msg} in: ${JSON.stringify(logs)}`);
}

async function health(url: string) {
  const response = await fetch(`${url}/healthz`);
  return { status: response.status, body: await response.json() };
}

Deno.test("unmigrated or behind: /healthz 503 'run deno task migrate' and a start-up line; migrated: 200", async () => {
  const db = await createTestDatabase();
  const svc = await serviceOn(db.url);
  const admin = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const line = await svc.line(/^database is not migrated/);
    assert.equal(line.msg, "database is not migrated: run deno task migrate");
    assert.equal(line.level, "error");
    const before = await health(svc.service.url);
    assert.equal(before.status, 503);
    assert.equal(before.body.database, "unmigrated");
    assert.match(before.body.error, /run deno task migrate/);
    await migrate(admin);
    // A fresh database has no API tables: the migration made stand-ins, and /healthz says so.
    assert.deepEqual(await health(svc.service.url), {
      status: 200,
      body: { ok: true, database: "up", host_tables: "stand-in" },
    });
    // Behind: a migration the service ships is not applied.
    await admin`delete from mailgun_webhook.schema_migrations where name = '0010_host_indexes.sql'`;
    const behind = await health(svc.service.url);
    assert.equal(behind.status, 503);
    assert.match(behind.body.error, /run deno task migrate/);
  } finally {
    await admin.end();
    await svc.close();
    await db.drop();
  }
});

Deno.test("stand-ins (no API tables were found): a WARN start-up line, and /healthz says host_tables stand-in", async () => {
  const svc = await startTestService();
  try {
    const line = await waitForLine(svc.logs, /created by this service's migration/);
    assert.equal(line.level, "warn");
    assert.equal(
      line.msg,
      "documents and tenants were created by this service's migration, not found: this is not the API's database",
    );
    assert.deepEqual(line.stand_in_tables, ["documents", "tenants"]);
    assert.equal((await waitForLine(svc.logs, /^database schema is up to date$/)).host_tables, "stand-in");
    assert.deepEqual(await health(svc.url), {
      status: 200,
      body: { ok: true, database: "up", host_tables: "stand-in" },
    });
  } finally {
    await svc.close();
  }
});

Deno.test("the API's own tables found: no warning, /healthz says host_tables found", async () => {
  const db = await createTestDatabase();
  const admin = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`
      create table documents (id bigserial primary key, email_message_id text, email_status text);
      create table tenants (id bigserial primary key, email_message_id text, email_status text);
    `);
    await admin.end();
    const svc = await startTestService({}, db);
    try {
      assert.equal((await waitForLine(svc.logs, /^database schema is up to date$/)).host_tables, "found");
      assert.ok(!svc.logs.some((l) => /created by this service's migration/.test(String(l.msg))), "no stand-in line");
      assert.deepEqual(await health(svc.url), {
        status: 200,
        body: { ok: true, database: "up", host_tables: "found" },
      });
    } finally {
      await svc.close();
    }
  } finally {
    await admin.end();
    await db.drop();
  }
});

Deno.test("up to date: the start-up line says so", async () => {
  const svc = await startTestService();
  try {
    for (let i = 0; i < 100 && !svc.logs.some((l) => l.msg === "database schema is up to date"); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(svc.logs.some((l) => l.msg === "database schema is up to date"), JSON.stringify(svc.logs));
  } finally {
    await svc.close();
  }
});

Deno.test("unreachable (refused, or a black hole): one start-up line with the error, never the password", async () => {
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const refusedPort = closed.addr.port;
  closed.close();
  const blackHole = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    for await (const conn of blackHole) held.push(conn);
  })();
  try {
    for (const port of [refusedPort, blackHole.addr.port]) {
      const svc = await serviceOn(`postgres://nobody:${PASSWORD}@127.0.0.1:${port}/none`);
      try {
        const line = await svc.line(/^database is unreachable/);
        assert.equal(line.level, "error");
        assert.ok(typeof line.error_code === "string" && typeof line.error === "string", JSON.stringify(line));
        if (port === refusedPort) assert.equal(line.error_code, "ECONNREFUSED");
        // Where, and how long it waited: an operator can tell a wrong host from a slow one.
        assert.equal(line.host, `127.0.0.1:${port}`);
        assert.equal(typeof line.timeout_ms, "number");
        assert.equal((await health(svc.service.url)).status, 503);
        assert.ok(!svc.lines.some((l) => l.includes(PASSWORD)), "the password reached the log");
      } finally {
        await svc.close();
      }
    }
  } finally {
    blackHole.close();
    for (const conn of held) conn.close();
  }
});

Deno.test({
  name: "a wrong database name: the start-up line carries PostgreSQL's own message",
  ignore: !Deno.env.get("DATABASE_URL"),
  async fn() {
    const url = new URL(Deno.env.get("DATABASE_URL")!);
    url.password = PASSWORD;
    url.pathname = "/no_such_database_mgwh";
    const svc = await serviceOn(url.toString());
    try {
      const line = await svc.line(/^database is unreachable/);
      assert.equal(line.error_code, "3D000");
      assert.match(line.error as string, /database "no_such_database_mgwh" does not exist/);
      assert.ok(!svc.lines.some((l) => l.includes(PASSWORD)), "the password reached the log");
    } finally {
      await svc.close();
    }
  },
});
