/** What Deno Deploy reads from the project, what the URL's sslmode does, and what tasks read from `.env`. */
import assert from "node:assert/strict";
import { loadDatabaseSettings } from "../../src/config/database_settings.ts";
import { loadConfig } from "../../src/config/service_config.ts";
import { connectPostgres, sslFallback } from "../../src/db/connect_postgres.ts";
import { copy } from "../helpers/copy_project.ts";
import { PROJECT_DIR, run } from "../helpers/subprocess.ts";
import { createTestDatabase } from "../helpers/test_database.ts";

const config = JSON.parse(await Deno.readTextFile(`${PROJECT_DIR}deno.json`));

Deno.test("deno.json declares the Deploy build: install, migrate before each timeline, main.ts as a dynamic app", () => {
  // Field names from docs.deno.com/deploy/reference/builds ("Editing app configuration from source code").
  assert.equal(config.deploy.install, "deno install");
  assert.equal(config.deploy.predeploy, "deno task migrate");
  assert.deepEqual(config.deploy.runtime, { type: "dynamic", entrypoint: "main.ts" });
  assert.ok(config.tasks.migrate, "the pre-deploy command runs a task that exists");
  assert.ok(!config.deploy.runtime.args, "Deploy passes arguments to main.ts, never runtime flags");
  // Deploy takes no flags: a start task with V8 settings would measure and run what production never does.
  assert.doesNotMatch(config.tasks.start.command, /--v8-flags/);
});

Deno.test("pre-deploy: migrate names the timeline and database it migrates; without DATABASE_URL it names the context", async () => {
  // Deno Deploy gives the pre-deploy command the timeline in DENO_TIMELINE (docs.deno.com/deploy/reference/builds).
  const missing = await run(["task", "migrate"], { env: { DENO_TIMELINE: "git-branch/feature" } });
  assert.equal(missing.code, 1);
  assert.match(
    missing.stderr,
    /DATABASE_URL did not reach the pre-deploy command of timeline git-branch\/feature: set it in the app's Development context/,
  );
  const db = await createTestDatabase();
  try {
    const migrated = await run(["task", "migrate"], { env: { DATABASE_URL: db.url, DENO_TIMELINE: "production" } });
    assert.equal(migrated.code, 0, migrated.stderr);
    const target = new URL(db.url);
    assert.ok(
      migrated.stdout.includes(
        `Migrating ${target.hostname}:${target.port}${target.pathname} (Deno Deploy timeline production)`,
      ),
      migrated.stdout,
    );
  } finally {
    await db.drop();
  }
});

Deno.test("sslmode=require in DATABASE_URL, or PGSSLMODE=require, demands TLS: never plain text instead", async () => {
  const db = await createTestDatabase();
  const options = { max: 1, connectTimeoutMs: 1_000, prepare: false };
  const plain = connectPostgres(db.url, options);
  const url = new URL(db.url);
  url.searchParams.set("sslmode", "require");
  const tls = connectPostgres(url.href, options);
  const fromEnv = connectPostgres(db.url, { ...options, sslMode: "require" });
  try {
    const [{ ssl }] = await plain`select current_setting('ssl', true) as ssl`;
    // The local servers (PostgreSQL with ssl off, PGlite) speak no TLS: demanding it must fail.
    if (db.kind === "postgres") assert.equal(ssl, "off", "this test needs a server without TLS");
    await assert.rejects(() => tls`select 1`);
    await assert.rejects(() => fromEnv`select 1`);
  } finally {
    await plain.end({ timeout: 1 });
    await tls.end({ timeout: 1 });
    await fromEnv.end({ timeout: 1 });
    await db.drop();
  }
});

Deno.test("PGSSLMODE (set by Deploy for linked databases) applies when the URL names no sslmode", () => {
  const url = "postgres://u:p@db.example:5432/app";
  const settings = (vars: Record<string, string>) => loadDatabaseSettings((name) => vars[name]);
  assert.equal(settings({ DATABASE_URL: url, PGSSLMODE: " Require " }).sslMode, "require");
  assert.equal(
    loadConfig((name) =>
      ({ DATABASE_URL: url, MAILGUN_WEBHOOK_SIGNING_KEY: "deploy-test-signing-key", PGSSLMODE: "require" })[name]
    ).sslMode,
    "require",
  );
  assert.deepEqual(sslFallback(url, settings({}).sslMode), {});
  assert.deepEqual(sslFallback(url, "require"), { ssl: "require" });
  assert.deepEqual(sslFallback(url, "verify-ca"), { ssl: "verify-full" });
  assert.deepEqual(sslFallback(url, "disable"), { ssl: false });
  // The URL's own sslmode wins: postgres.js reads it.
  assert.deepEqual(sslFallback(`${url}?sslmode=disable`, "require"), {});
});

Deno.test("tasks read .env when there is one (the shell wins), work without one, and .env is git-ignored", async () => {
  assert.match(await Deno.readTextFile(`${PROJECT_DIR}.gitignore`), /^\.env$/m);
  const dir = await Deno.makeTempDir({ prefix: "mgwh-dotenv-" });
  try {
    await copy(dir);
    await Deno.writeTextFile(`${dir}/.env`, "# read by deno task\nSIGNATURE_MAX_AGE_SECONDS=from-dotenv\n");
    const fromFile = await run(["task", "start"], { cwd: dir });
    assert.equal(fromFile.code, 1);
    assert.match(fromFile.stderr, /Configuration error: SIGNATURE_MAX_AGE_SECONDS .*"from-dotenv"/);
    const fromShell = await run(["task", "start"], { cwd: dir, env: { SIGNATURE_MAX_AGE_SECONDS: "from-shell" } });
    assert.match(fromShell.stderr, /"from-shell"/);
    // Without a .env, no warning either: a fresh clone's first output is the service's own.
    await Deno.remove(`${dir}/.env`);
    const without = await run(["task", "simulate", "--help"], { cwd: dir });
    assert.equal(without.code, 0);
    assert.ok(!/env file|Warning/i.test(without.stderr), without.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
