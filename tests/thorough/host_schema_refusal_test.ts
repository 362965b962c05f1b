/**
 * A status the API's schema refuses (a narrow column, a CHECK) is answered
 * 503, never 406: nothing is written, its token stays unspent, Mailgun retries,
 * and the retry is applied once the schema is fixed. It never fails the other
 * webhooks of its batch. A schema that refuses statuses at start refuses the
 * start, and deno task migrate refuses to apply anything.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { loadConfig } from "../../src/config/service_config.ts";
import { connectPostgres } from "../../src/db/connect_postgres.ts";
import { HostSchemaProblemsError } from "../../src/db/host_schema_monitor.ts";
import { migrate } from "../../src/db/migrate.ts";
import { setLogWriter } from "../../src/reporting/log.ts";
import { startService } from "../../src/start_service.ts";
import { eventData, post, signedBody } from "../helpers/mailgun.ts";
import { run } from "../helpers/subprocess.ts";
import { createTestDatabase } from "../helpers/test_database.ts";
import { insertRow, newMessageId, rowState, startTestService, type TestService } from "../helpers/test_service.ts";

async function tokenCount(svc: TestService, token: string): Promise<number> {
  const [row] = await svc.sql`select count(*)::int as n from mailgun_webhook.tokens where token = ${token}`;
  return row.n;
}

async function health(svc: TestService) {
  const response = await fetch(`${svc.url}/healthz`);
  return { status: response.status, json: await response.json() };
}

Deno.test("varchar(9) (narrowed after start): a complaint gets 503, token unspent, again 503; applied once widened", async () => {
  const svc = await startTestService();
  try {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    // The API's own migration narrows the column while the service runs.
    await svc.sql`alter table documents alter column email_status type varchar(9)`;
    const { body, signature } = signedBody(svc.key, eventData("complained", messageId));
    for (let delivery = 0; delivery < 2; delivery++) {
      const answer = await post(svc.url, body);
      assert.equal(answer.status, 503, JSON.stringify(answer.json));
      const line = svc.logs.findLast((entry) => entry.msg === "webhook")!;
      assert.equal(line.outcome, "schema_refused");
      assert.equal(line.error_code, "22001");
      assert.equal(await tokenCount(svc, signature.token), 0);
    }
    const refusal = svc.logs.findLast((entry) => entry.msg === "host schema refused a status the service writes")!;
    assert.equal(refusal.level, "error");
    assert.equal(refusal.status, "COMPLAINED");
    assert.match(String(refusal.fix), /varchar\(10\)/);
    const state = await rowState(svc.sql, "documents", id);
    assert.equal(state.status, "SENT");
    assert.equal(state.events.length, 0);
    // The refusal had the schema checked again: the log names the column and the fix, /healthz says 503.
    await waitFor(() => svc.logs.some((entry) => entry.msg === "host schema problem"));
    const problem = svc.logs.find((entry) => entry.msg === "host schema problem")!;
    assert.equal(problem.column, "email_status");
    assert.equal(problem.fix, "alter table documents alter column email_status type varchar(10)");
    const sick = await health(svc);
    assert.equal(sick.status, 503);
    assert.equal(sick.json.database, "host schema refuses statuses");

    await svc.sql`alter table documents alter column email_status type varchar(10)`;
    const retried = await post(svc.url, body);
    assert.equal(retried.status, 200, JSON.stringify(retried.json));
    assert.equal(retried.json.outcome, "applied");
    assert.equal((await rowState(svc.sql, "documents", id)).status, "COMPLAINED");
    assert.equal(await tokenCount(svc, signature.token), 1);
  } finally {
    await svc.close();
  }
});

Deno.test("an API CHECK refusing FAILED on one document: in a batch of 40, only its webhook gets 503", async () => {
  // One statement in flight, up to 64 webhooks in it: webhooks that arrive together share a batch.
  const svc = await startTestService({ BATCH_IN_FLIGHT: "1", BATCH_MAX: "64" });
  try {
    const refusedMessage = newMessageId().replace("@", ".no-failed@");
    const refusedId = await insertRow(svc.sql, "documents", refusedMessage);
    await svc.sql`
      alter table documents add constraint api_no_failed
      check (email_status is distinct from 'FAILED' or email_message_id not like '%.no-failed@%')
    `;
    const others = await Promise.all(Array.from({ length: 39 }, async (_, i) => {
      const messageId = newMessageId();
      return { messageId, id: await insertRow(svc.sql, i % 2 ? "documents" : "tenants", messageId), i };
    }));
    const refused = signedBody(svc.key, eventData("permanent", refusedMessage));
    const bodies = others.map(({ messageId, i }) =>
      signedBody(svc.key, eventData(i % 3 ? "delivered" : "permanent", messageId)).body
    );
    const answers = await Promise.all([
      ...bodies.slice(0, 20).map((body) => post(svc.url, body)),
      post(svc.url, refused.body),
      ...bodies.slice(20).map((body) => post(svc.url, body)),
    ]);
    const refusedAnswer = answers.splice(20, 1)[0];
    assert.equal(refusedAnswer.status, 503, JSON.stringify(refusedAnswer.json));
    assert.deepEqual(answers.map((answer) => answer.status), others.map(() => 200));
    assert.deepEqual(answers.map((answer) => answer.json.outcome), others.map(() => "applied"));
    for (const { id, i } of others) {
      const state = await rowState(svc.sql, i % 2 ? "documents" : "tenants", id);
      assert.equal(state.status, i % 3 ? "DELIVERED" : "FAILED");
      assert.equal(state.events.length, 1);
    }
    assert.equal((await rowState(svc.sql, "documents", refusedId)).status, "SENT");
    assert.equal(await tokenCount(svc, refused.signature.token), 0);
    const refusal = svc.logs.findLast((entry) => entry.msg === "host schema refused a status the service writes")!;
    assert.equal(refusal.error_code, "23514");
    assert.equal(refusal.table, "documents");
    assert.equal(refusal.constraint, "api_no_failed");
    assert.equal(svc.logs.filter((entry) => entry.msg === "webhook" && entry.status === 503).length, 1);
  } finally {
    await svc.close();
  }
});

Deno.test("a schema that refuses statuses: the service refuses to start, migrate refuses to apply anything", async () => {
  const db = await createTestDatabase();
  try {
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    await sql.unsafe(`
      create table documents (id bigserial primary key, email_message_id varchar(255), email_status varchar(9));
      create table tenants (id bigserial primary key, email_message_id varchar(255),
                            email_status varchar(20) check (email_status in ('SENT', 'DELIVERED', 'BOUNCED')));
    `);
    await sql.end();
    if (db.kind === "postgres") {
      const migrated = await run(["task", "migrate"], { env: { DATABASE_URL: db.url } });
      assert.equal(migrated.code, 1, migrated.stdout);
      assert.match(migrated.stderr, /alter table documents alter column email_status type varchar\(10\)/);
      assert.match(migrated.stderr, /tenants_email_status_check/);
      const check = postgres(db.url, { max: 1, onnotice: () => {} });
      assert.equal((await check`select to_regnamespace('mailgun_webhook') as ns`)[0].ns, null);
      await check.end();
    }
    const setup = connectPostgres(db.url, { max: 1, connectTimeoutMs: 5000, prepare: true });
    await migrate(setup);
    await setup.end();
    const config = loadConfig((name) =>
      ({
        DATABASE_URL: db.url,
        MAILGUN_WEBHOOK_SIGNING_KEY: "a-test-signing-key-of-32-chars!!",
        PORT: "0",
        LISTEN_HOST: "127.0.0.1",
        DB_POOL_MAX: String(db.poolMax),
        BATCH_IN_FLIGHT: "1",
      })[name]
    );
    const logged: string[] = [];
    const previous = setLogWriter((line) => logged.push(line));
    await assert.rejects(startService(config).finally(() => setLogWriter(previous)), (error: unknown) => {
      assert.ok(error instanceof HostSchemaProblemsError);
      assert.equal(error.problems.length, 2);
      assert.match(error.message, /documents\.email_status: .*COMPLAINED/);
      assert.match(error.message, /tenants_email_status_check.*refuses FAILED, COMPLAINED/);
      return true;
    });
    assert.equal(logged.filter((line) => JSON.parse(line).msg === "host schema problem").length, 2);
    if (db.kind === "postgres") {
      // The service as a process (what Deno Deploy runs): one line says why it stops, and it exits 1.
      const started = await run(["task", "--quiet", "start"], {
        env: { DATABASE_URL: db.url, MAILGUN_WEBHOOK_SIGNING_KEY: "a-test-signing-key-of-32-chars!!", PORT: "0" },
      });
      assert.equal(started.code, 1, started.stdout);
      assert.match(started.stderr, /^Start-up refused: The API's schema would refuse statuses/m);
      assert.match(started.stderr, /alter table documents alter column email_status type varchar\(10\)/);
    }
  } finally {
    await db.drop();
  }
});

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error("Timed out waiting for a condition.");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
