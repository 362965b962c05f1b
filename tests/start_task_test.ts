/** The service as users run it: `deno task start`, a child process with the start task's permissions. */
import assert from "node:assert/strict";
import postgres from "postgres";
import { copy } from "./helpers/copy_project.ts";
import { eventData, post, signedBody } from "./helpers/mailgun.ts";
import { run, signalChild, spawn, START_PERMISSIONS } from "./helpers/subprocess.ts";
import { createTestDatabase } from "./helpers/test_database.ts";
import { newMessageId } from "./helpers/test_service.ts";
import { migrate } from "../src/db/migrate.ts";

const listening = (line: string) => line.includes('"msg":"listening"');

Deno.test("fresh clone: deno task start serves on the embedded database with an announced development key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mgwh-clone-" });
  const child = await (async () => {
    await copy(dir);
    return spawn(["task", "start"], { cwd: dir, env: { PORT: "0" } });
  })();
  try {
    const url = JSON.parse(await child.waitFor(listening, 120_000)).url as string;
    const announcement = JSON.parse(child.lines.find((line) => line.includes("development_signing_key"))!);
    assert.match(announcement.msg, /DEVELOPMENT signing key/);
    const key = announcement.development_signing_key as string;
    assert.equal((await Deno.readTextFile(`${dir}/.pglite/dev-signing-key`)).trim(), key);
    assert.match(await Deno.readTextFile(`${dir}/.gitignore`), /^\.pglite\/$/m);

    const sql = postgres((await Deno.readTextFile(`${dir}/.pglite/embedded-url`)).trim(), { max: 1 });
    try {
      const messageId = newMessageId();
      await sql`insert into documents (email_message_id, email_status) values (${messageId}, 'SENT')`;
      const { body } = await signedBody(key, eventData("delivered", messageId.slice(1, -1)));
      assert.deepEqual((await post(url, body)).json, { ok: true, outcome: "applied" });
      const [row] = await sql`select email_status from documents where email_message_id = ${messageId}`;
      assert.equal(row.email_status, "DELIVERED");
    } finally {
      await sql.end();
    }
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
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
  const key = "shutdown-test-key";
  const child = spawn(["run", ...START_PERMISSIONS, "main.ts"], {
    env: { DATABASE_URL: db.url, MAILGUN_WEBHOOK_SIGNING_KEY: key, PORT: "0", LISTEN_HOST: "127.0.0.1" },
  });
  try {
    const url = JSON.parse(await child.waitFor(listening)).url as string;
    const messageId = newMessageId();
    await setup`insert into documents (email_message_id, email_status) values (${messageId}, 'SENT')`;
    const { body } = await signedBody(key, eventData("complained", messageId));
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
    const during = await post(url, (await signedBody(key, eventData("delivered", messageId))).body);
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
