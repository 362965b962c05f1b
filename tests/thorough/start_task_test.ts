/** The service as users run it: `deno task start`, a child process with the start task's permissions. */
import assert from "node:assert/strict";
import postgres from "postgres";
import { copy } from "../helpers/copy_project.ts";
import { eventData, post, signedBody } from "../helpers/mailgun.ts";
import {
  childCommand,
  failWithStderr,
  run,
  signalChild,
  spawn,
  START_PERMISSIONS,
  stderrLine,
} from "../helpers/subprocess.ts";
import { createTestDatabase } from "../helpers/test_database.ts";
import { newMessageId } from "../helpers/test_service.ts";
import { migrate } from "../../src/db/migrate.ts";

const listening = (line: string) => line.includes('"msg":"listening"');

Deno.test("fresh clone: deno task start serves on the embedded database with an announced development key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mgwh-clone-" });
  const child = await (async () => {
    await copy(dir);
    return spawn(["task", "start"], { cwd: dir, env: { PORT: "0" } });
  })();
  try {
    const url = JSON.parse(await child.waitFor(listening, 120_000)).url as string;
    // A warning: on stderr, written before the service listens.
    const announcement = JSON.parse(await stderrLine(child, (line) => line.includes("development_signing_key")));
    assert.match(announcement.msg, /DEVELOPMENT signing key/);
    const key = announcement.development_signing_key as string;
    assert.equal((await Deno.readTextFile(`${dir}/.pglite/dev-signing-key`)).trim(), key);
    assert.match(await Deno.readTextFile(`${dir}/.gitignore`), /^\.pglite\/$/m);

    const sql = postgres((await Deno.readTextFile(`${dir}/.pglite/embedded-url`)).trim(), { max: 1 });
    try {
      const messageId = newMessageId();
      await sql`insert into documents (email_message_id, email_status) values (${messageId}, 'SENT')`;
      const { body } = signedBody(key, eventData("delivered", messageId.slice(1, -1)));
      assert.deepEqual((await post(url, body)).json, { ok: true, outcome: "applied" });
      const [row] = await sql`select email_status from documents where email_message_id = ${messageId}`;
      assert.equal(row.email_status, "DELIVERED");
    } finally {
      await sql.end();
    }
    // No API here: the stand-in tables are expected, said at info level, and /healthz names them.
    const standIns = JSON.parse(child.lines.find((line) => line.includes('"stand_in_tables"'))!);
    assert.equal(standIns.level, "info");
    assert.match(standIns.msg, /created by this service's migration, as expected with the embedded database/);
    const health = await fetch(`${url}/healthz`);
    assert.deepEqual([health.status, await health.json()], [200, {
      ok: true,
      database: "up",
      host_tables: "stand-in",
    }]);
    child.process.kill("SIGTERM");
    assert.equal((await child.process.status).code, 0);
    assert.ok(child.lines.some((line) => line.includes('"msg":"stopped"')));
  } finally {
    signalChild(child, "SIGKILL");
    await child.process.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a bad configuration stops start-up with one line naming the variable", async () => {
  const cases: [Record<string, string>, string][] = [
    [{ PORT: "eighty" }, "PORT"],
    [{ DATABASE_URL: "postgres://u@127.0.0.1:5432/x" }, "MAILGUN_WEBHOOK_SIGNING_KEY"],
    [{ DENO_DEPLOY: "1" }, "DATABASE_URL"],
    [{ SIGNATURE_MAX_AGE_SECONDS: "soon" }, "SIGNATURE_MAX_AGE_SECONDS"],
  ];
  for (const [env, variable] of cases) {
    const result = await run(["run", ...START_PERMISSIONS, "main.ts"], { env });
    assert.equal(result.code, 1, JSON.stringify(env));
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0], new RegExp(`^Configuration error: ${variable} `));
  }
});

Deno.test("SIGTERM: stops accepting, finishes the request in flight, closes the pool, exits 0", async () => {
  const db = await createTestDatabase();
  const setup = postgres(db.url, { max: 1, onnotice: () => {} });
  await migrate(setup);
  const key = "shutdown-test-signing-key";
  const child = spawn(["run", ...START_PERMISSIONS, "main.ts"], {
    env: { DATABASE_URL: db.url, MAILGUN_WEBHOOK_SIGNING_KEY: key, PORT: "0", LISTEN_HOST: "127.0.0.1" },
  });
  try {
    const url = JSON.parse(await child.waitFor(listening)).url as string;
    const messageId = newMessageId();
    await setup`insert into documents (email_message_id, email_status) values (${messageId}, 'SENT')`;
    const { body } = signedBody(key, eventData("complained", messageId));
    const bytes = new TextEncoder().encode(body);
    let release!: () => void;
    const halfSent = new Promise<void>((resolve) => (release = resolve));
    const slowBody = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(bytes.slice(0, 100));
        release();
        await new Promise((resolve) => setTimeout(resolve, 1000));
        controller.enqueue(bytes.slice(100));
        controller.close();
      },
    });
    const inFlight = fetch(`${url}/v1/mailgun/webhook`, { method: "POST", body: slowBody });
    await halfSent;
    await new Promise((resolve) => setTimeout(resolve, 200));
    child.process.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 200));
    // While draining, new webhooks are refused with a status Mailgun retries.
    const during = await post(url, (signedBody(key, eventData("delivered", messageId))).body);
    assert.equal(during.status, 503);
    const response = await inFlight;
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { ok: true, outcome: "applied" });
    assert.equal((await child.process.status).code, 0);
    const [row] = await setup`select email_status from documents where email_message_id = ${messageId}`;
    assert.equal(row.email_status, "COMPLAINED");
    await assert.rejects(fetch(`${url}/healthz`));
  } finally {
    signalChild(child, "SIGKILL");
    await child.process.status;
    await setup.end();
    await db.drop();
  }
});

Deno.test("SIGINT (Deno Deploy's stop): the request in flight is answered, a stalled one cut, exit within 5 s", async () => {
  const db = await createTestDatabase();
  const setup = postgres(db.url, { max: 1, onnotice: () => {} });
  await migrate(setup);
  const key = "sigint-test-signing-key";
  const child = spawn(["run", ...START_PERMISSIONS, "main.ts"], {
    env: {
      DATABASE_URL: db.url,
      MAILGUN_WEBHOOK_SIGNING_KEY: key,
      PORT: "0",
      LISTEN_HOST: "127.0.0.1",
      // Docker and Kubernetes set it to the container's name: it is ignored.
      HOSTNAME: "some-container",
      DB_POOL_MAX: String(db.poolMax),
      // A body this slow would hold the shutdown for a minute if the drain were not bounded.
      BODY_TIMEOUT_MS: "60000",
    },
  });
  try {
    const url = JSON.parse(await child.waitFor(listening)).url as string;
    const messageId = newMessageId();
    await setup`insert into documents (email_message_id, email_status) values (${messageId}, 'SENT')`;
    const bytes = new TextEncoder().encode((signedBody(key, eventData("delivered", messageId))).body);
    const started = Promise.withResolvers<void>();
    const finishing = fetch(`${url}/v1/mailgun/webhook`, {
      method: "POST",
      body: new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(bytes.slice(0, 100));
          started.resolve();
          await new Promise((resolve) => setTimeout(resolve, 800));
          controller.enqueue(bytes.slice(100));
          controller.close();
        },
      }),
    });
    const stalledAbort = new AbortController();
    const stalled = fetch(`${url}/v1/mailgun/webhook`, {
      method: "POST",
      signal: stalledAbort.signal,
      body: new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(bytes.slice(0, 10)); // and never more
        },
      }),
    }).then((response) => response.status, () => "cut");
    await started.promise;
    await new Promise((resolve) => setTimeout(resolve, 200));
    const signalled = performance.now();
    child.process.kill("SIGINT");
    const response = await finishing;
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { ok: true, outcome: "applied" });
    const status = await child.process.status;
    const tookMs = performance.now() - signalled;
    assert.equal(status.code, 0);
    assert.ok(tookMs < 5_000, `shutdown took ${Math.round(tookMs)} ms, past Deploy's 5 s grace`);
    stalledAbort.abort();
    assert.notEqual(await stalled, 200);
    assert.ok(child.lines.some((line) => line.includes('"msg":"stopped"')));
  } catch (error) {
    await failWithStderr(child, error);
  } finally {
    signalChild(child, "SIGKILL");
    await child.process.status;
    await setup.end();
    await db.drop();
  }
});

Deno.test("a closed stdout never stops the service: it still answers webhooks and /healthz", async () => {
  const db = await createTestDatabase();
  const setup = postgres(db.url, { max: 1, onnotice: () => {} });
  await migrate(setup);
  const key = "closed-stdout-signing-key";
  const process = childCommand(["run", ...START_PERMISSIONS, "main.ts"], {
    env: { DATABASE_URL: db.url, MAILGUN_WEBHOOK_SIGNING_KEY: key, PORT: "0", LISTEN_HOST: "127.0.0.1" },
    stderr: "null",
  }).spawn();
  try {
    const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const deadline = setTimeout(() => reader.cancel(), 60_000);
    while (!text.includes('"msg":"listening"')) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the service stopped before listening: ${text}`);
      text += value;
    }
    clearTimeout(deadline);
    const line = text.split("\n").find((line) => line.includes('"msg":"listening"'))!;
    const url = JSON.parse(line).url as string;
    // The parent goes away: the child's next log line meets a closed pipe.
    await reader.cancel();
    for (let i = 0; i < 3; i++) {
      const messageId = newMessageId();
      await setup`insert into documents (email_message_id, email_status) values (${messageId}, 'SENT')`;
      const answer = await post(url, (signedBody(key, eventData("delivered", messageId))).body);
      assert.equal(answer.status, 200);
      const health = await fetch(`${url}/healthz`);
      await health.body?.cancel();
      assert.equal(health.status, 200);
    }
    process.kill("SIGTERM");
    assert.equal((await process.status).code, 0);
  } finally {
    try {
      process.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await process.status;
    await setup.end();
    await db.drop();
  }
});

Deno.test("port in use: start-up fails with one line naming the port and PORT", async () => {
  const db = await createTestDatabase();
  const occupied = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (occupied.addr as Deno.NetAddr).port;
  try {
    const result = await run(["run", ...START_PERMISSIONS, "main.ts"], {
      env: {
        DATABASE_URL: db.url,
        MAILGUN_WEBHOOK_SIGNING_KEY: "start-task-test-signing-key",
        PORT: String(port),
        LISTEN_HOST: "127.0.0.1",
      },
    });
    assert.equal(result.code, 1);
    // Log lines (the start-up check's error on this unmigrated database) are on stderr too: not counted.
    const lines = result.stderr.trim().split("\n").filter((line) => !line.startsWith('{"time":'));
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0], new RegExp(`^Start-up failed: port ${port} is already in use.*set PORT`));
  } finally {
    occupied.close();
    await db.drop();
  }
});
