/**
 * Every tool gives up on a database that does not answer within a stated
 * bound, naming its host:port (never the password), and migrate says what it
 * waits for.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { boundStatements } from "../../src/db/bounded_statements.ts";
import { TOOL_CONNECT_TIMEOUT_MS } from "../../src/db/connect_tool.ts";
import { DatabaseTimeoutError } from "../../src/db/database_errors.ts";
import { migrate } from "../../src/db/migrate.ts";
import { run } from "../helpers/subprocess.ts";
import { createTestDatabase } from "../helpers/test_database.ts";

const PASSWORD = "never-in-a-message-7f3a";

/** A loopback listener that accepts connections and never says a word. */
function silentListener() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) conns.push(conn);
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      for (const conn of conns) conn.close();
      await accepting;
    },
  };
}

/** A listening socket whose backlog is never accepted: the kernel completes the handshake, nobody reads. */
function neverAccepting() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return { port: (listener.addr as Deno.NetAddr).port, close: () => listener.close() };
}

const TOOLS: [string, string[]][] = [
  ["migrate", []],
  ["sql", ["select 1"]],
  ["erase", ["someone@example.com"]],
  ["reconcile", []],
];

Deno.test("migrate, sql, erase, reconcile give up on a silent database within the bound, naming host:port", async () => {
  const silent = silentListener();
  const deaf = neverAccepting();
  try {
    const runs = [silent.port, deaf.port].flatMap((port) =>
      TOOLS.map(async ([task, args]) => {
        const started = performance.now();
        const result = await run(["task", "--quiet", task, ...args], {
          env: {
            DATABASE_URL: `postgres://tool:${PASSWORD}@127.0.0.1:${port}/nothing`,
            MAILGUN_API_KEY: "key",
            MAILGUN_DOMAIN: "mg.example.com",
          },
        });
        return { task, port, result, ms: performance.now() - started };
      })
    );
    for (const { task, port, result, ms } of await Promise.all(runs)) {
      const label = `deno task ${task} against 127.0.0.1:${port}: ${result.stderr}`;
      assert.notEqual(result.code, 0, label);
      assert.match(result.stderr, new RegExp(`127\\.0\\.0\\.1:${port} did not answer the connect within 10 s`), label);
      assert.ok(!(result.stdout + result.stderr).includes(PASSWORD), `the password was printed: ${label}`);
      // The bound, plus the start of a Deno process and a closing pool, on a busy machine.
      assert.ok(ms < TOOL_CONNECT_TIMEOUT_MS + 8_000, `${label} took ${Math.round(ms)} ms`);
    }
  } finally {
    await silent.close();
    deaf.close();
  }
});

// PGlite runs in this process with a single session: a pg_sleep there stops this process's timers too, and another
// "session" holding a lock is the same session. Statements that outlast a bound, and waits, exist only on PostgreSQL.
const onPostgres = { ignore: !Deno.env.get("DATABASE_URL") };

Deno.test({
  ...onPostgres,
  name: "a statement past its bound is cancelled and fails with the host and the bound",
  async fn() {
    const db = await createTestDatabase();
    const pool = postgres(db.url, { max: 1, onnotice: () => {} });
    const sql = boundStatements(pool, { timeoutMs: 300, host: "db.example:5432" });
    try {
      const started = performance.now();
      await assert.rejects(
        () => sql`select pg_sleep(3)`,
        (error: unknown) =>
          error instanceof DatabaseTimeoutError &&
          error.message === "The database at db.example:5432 did not answer a statement within 300 ms.",
      );
      assert.ok(performance.now() - started < 2_000);
      // unsafe() is bounded too, and a bounded pool still answers what is quick.
      await assert.rejects(() => sql.unsafe("select pg_sleep(3)"), DatabaseTimeoutError);
      const [row] = await sql`select 41 + 1 as n`;
      assert.equal(row.n, 42);
    } finally {
      await pool.end({ timeout: 5 });
      await db.drop();
    }
  },
});

Deno.test({
  ...onPostgres,
  name: "migrate says it waits for another migration's lock, with the holder's pid and application name",
  async fn() {
    const db = await createTestDatabase();
    const holder = postgres(db.url, { max: 1, onnotice: () => {}, connection: { application_name: "holder-test" } });
    const pool = postgres(db.url, { max: 2, onnotice: () => {} });
    const dir = await Deno.makeTempDir({ prefix: "mgwh-migrate-wait-" });
    try {
      await Deno.writeTextFile(`${dir}/0001_t.sql`, "create table waited (id int);\n");
      const held = await holder.reserve();
      const [{ pid }] = await held`select pg_backend_pid() as pid`;
      await held`select pg_advisory_lock(7240431001)`;
      const lines: string[] = [];
      const running = migrate(pool, new URL(`file://${dir}/`), {
        statementTimeoutMs: 5_000,
        report: (l) => lines.push(l),
      });
      await until(() => lines.length > 0, "a line about the wait");
      assert.equal(
        lines[0],
        `Waiting: another migration holds the migration lock: pid ${pid} (holder-test), ` +
          lines[0].split(", ").at(-1),
      );
      assert.match(lines[0], /connected \d+ s ago\.$/);
      await held`select pg_advisory_unlock(7240431001)`;
      held.release();
      assert.deepEqual(await running, ["0001_t.sql"]);
      assert.match(lines.at(-1)!, /^Got the migration lock after \d+ s\.$/);
    } finally {
      await holder.end({ timeout: 5 });
      await pool.end({ timeout: 5 });
      await Deno.remove(dir, { recursive: true });
      await db.drop();
    }
  },
});

Deno.test({
  ...onPostgres,
  name: "a migration waiting on a table lock says which table and who holds it, and its lock timeout names them",
  async fn() {
    const db = await createTestDatabase();
    const holder = postgres(db.url, { max: 1, onnotice: () => {}, connection: { application_name: "holder-test" } });
    const pool = postgres(db.url, { max: 2, onnotice: () => {} });
    const dir = await Deno.makeTempDir({ prefix: "mgwh-migrate-lock-" });
    try {
      await holder`create table busy (id int)`;
      await Deno.writeTextFile(`${dir}/0001_busy.sql`, "alter table busy add column extra int;\n");
      const lines: string[] = [];
      let pid = 0;
      const failure = holder.begin(async (tx) => {
        [{ pid }] = await tx`select pg_backend_pid() as pid`;
        await tx`lock table busy in access share mode`;
        await assert.rejects(
          () => migrate(pool, new URL(`file://${dir}/`), { statementTimeoutMs: 30_000, report: (l) => lines.push(l) }),
          (error: Error) => {
            assert.match(error.message, /^Migration 0001_busy\.sql failed: canceling statement due to lock timeout/);
            assert.ok(
              error.message.includes(
                `(it waited for a lock (AccessExclusiveLock) on table busy, held by pid ${pid} (holder-test))`,
              ),
              error.message,
            );
            return true;
          },
        );
      });
      await failure;
      assert.ok(
        lines.some((line) =>
          line.includes(`for a lock (AccessExclusiveLock) on table busy, held by pid ${pid} (holder-test)`)
        ),
        lines.join("\n"),
      );
    } finally {
      await holder.end({ timeout: 5 });
      await pool.end({ timeout: 5 });
      await Deno.remove(dir, { recursive: true });
      await db.drop();
    }
  },
});

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
