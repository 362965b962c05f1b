import assert from "node:assert/strict";
import { ConfigError } from "../src/config/read_env.ts";
import { DEFAULT_SIGNATURE_MAX_AGE_SECONDS, loadConfig } from "../src/config/service_config.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];
const DB = "postgres://u:secret-password@db.example:5432/app";
/** As long as Mailgun's (32 characters). */
const KEY = "0123456789abcdef0123456789abcdef";

function errorOf(vars: Record<string, string>): string {
  try {
    loadConfig(env(vars));
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.message;
  }
  assert.fail("expected a configuration error");
}

Deno.test("defaults: embedded database, no key, port 8000, 24 h / 5 min window, 1 MiB", () => {
  const config = loadConfig(env({}));
  assert.equal(config.databaseUrl, undefined);
  assert.deepEqual(config.signingKeys, []);
  assert.equal(config.port, 8000);
  // Development (embedded database, announced key) listens on loopback only; production on every interface.
  assert.equal(config.hostname, "127.0.0.1");
  assert.equal(loadConfig(env({ DATABASE_URL: DB, MAILGUN_WEBHOOK_SIGNING_KEY: KEY })).hostname, "0.0.0.0");
  assert.equal(config.signatureMaxAgeSeconds, DEFAULT_SIGNATURE_MAX_AGE_SECONDS);
  assert.equal(config.signatureMaxAgeSeconds, 86_400);
  assert.equal(config.signatureMaxFutureSeconds, 300);
  assert.equal(config.bodyLimitBytes, 1_048_576);
  assert.equal(config.dbPrepare, true);
});

Deno.test("several keys separated by commas, spaces trimmed", () => {
  const config = loadConfig(env({ DATABASE_URL: DB, MAILGUN_WEBHOOK_SIGNING_KEY: ` ${KEY}-new , ${KEY}-old ,,` }));
  assert.deepEqual(config.signingKeys, [`${KEY}-new`, `${KEY}-old`]);
});

Deno.test("DATABASE_URL without a signing key stops start-up, naming the variable", () => {
  assert.match(errorOf({ DATABASE_URL: DB }), /^MAILGUN_WEBHOOK_SIGNING_KEY is required/);
  assert.match(errorOf({ DATABASE_URL: DB, MAILGUN_WEBHOOK_SIGNING_KEY: " , " }), /^MAILGUN_WEBHOOK_SIGNING_KEY/);
});

Deno.test("Deno Deploy refuses the embedded database", () => {
  assert.match(errorOf({ DENO_DEPLOY: "1" }), /^DATABASE_URL is required on Deno Deploy/);
  assert.match(errorOf({ DENO_DEPLOYMENT_ID: "abc" }), /^DATABASE_URL/);
  assert.equal(
    loadConfig(env({ DENO_DEPLOY: "1", DATABASE_URL: DB, MAILGUN_WEBHOOK_SIGNING_KEY: KEY })).databaseUrl,
    DB,
  );
});

Deno.test("bad values name their variable, one line, never the database password", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ PORT: "eighty" }, /^PORT /],
    [{ PORT: "70000" }, /^PORT /],
    [{ SIGNATURE_MAX_AGE_SECONDS: "-1" }, /^SIGNATURE_MAX_AGE_SECONDS /],
    [{ SIGNATURE_MAX_FUTURE_SECONDS: "1.5" }, /^SIGNATURE_MAX_FUTURE_SECONDS /],
    [{ BODY_LIMIT_BYTES: "1MiB" }, /^BODY_LIMIT_BYTES /],
    [{ BODY_TIMEOUT_MS: "0" }, /^BODY_TIMEOUT_MS /],
    [{ DB_CONNECT_TIMEOUT_MS: "x" }, /^DB_CONNECT_TIMEOUT_MS /],
    [{ DB_QUERY_TIMEOUT_MS: "" + 10 ** 9 }, /^DB_QUERY_TIMEOUT_MS /],
    [{ DB_POOL_MAX: "0" }, /^DB_POOL_MAX /],
    [{ DB_PREPARE: "maybe" }, /^DB_PREPARE /],
    [{ BATCH_MAX: "none" }, /^BATCH_MAX /],
    [{ BATCH_IN_FLIGHT: "-3" }, /^BATCH_IN_FLIGHT /],
    [{ BATCH_GATHER_MS: "101" }, /^BATCH_GATHER_MS /],
    [{ DATABASE_URL: "mysql://u:secret-password@h/db", MAILGUN_WEBHOOK_SIGNING_KEY: KEY }, /^DATABASE_URL /],
    [{ DATABASE_URL: "not a url secret-password", MAILGUN_WEBHOOK_SIGNING_KEY: KEY }, /^DATABASE_URL /],
    [{ MAILGUN_PARENT_WEBHOOK_SIGNING_KEY: "," }, /^MAILGUN_PARENT_WEBHOOK_SIGNING_KEY /],
    [
      { PGSSLMODE: "requir" },
      /^PGSSLMODE must be one of disable, allow, prefer, require, verify-ca, verify-full \(got "requir"\)\.$/,
    ],
    [
      { DATABASE_URL: `${DB}?sslmode=requir`, MAILGUN_WEBHOOK_SIGNING_KEY: KEY },
      /^DATABASE_URL has sslmode="requir", /,
    ],
    [
      { DATABASE_URL: DB, MAILGUN_WEBHOOK_SIGNING_KEY: "x" },
      /^MAILGUN_WEBHOOK_SIGNING_KEY holds a key shorter than 16/,
    ],
    [
      { MAILGUN_PARENT_WEBHOOK_SIGNING_KEY: `${KEY},short-key` },
      /^MAILGUN_PARENT_WEBHOOK_SIGNING_KEY holds a key shorter/,
    ],
    [{ TOKEN_PRUNE_FIRST_DELAY_MS: "soon" }, /^TOKEN_PRUNE_FIRST_DELAY_MS must be a whole number from 0 to 86400000 /],
  ];
  for (const [vars, pattern] of cases) {
    const message = errorOf(vars);
    assert.match(message, pattern, JSON.stringify(vars));
    assert.ok(!message.includes("\n"));
    assert.ok(!message.includes("secret-password"));
  }
});

Deno.test("tolerances can be overridden", () => {
  const config = loadConfig(env({
    SIGNATURE_MAX_AGE_SECONDS: "3600",
    SIGNATURE_MAX_FUTURE_SECONDS: "60",
    BODY_LIMIT_BYTES: "2048",
    BODY_TIMEOUT_MS: "500",
    DB_QUERY_TIMEOUT_MS: "800",
    DB_PREPARE: "false",
  }));
  assert.equal(config.signatureMaxAgeSeconds, 3600);
  assert.equal(config.signatureMaxFutureSeconds, 60);
  assert.equal(config.bodyLimitBytes, 2048);
  assert.equal(config.bodyTimeoutMs, 500);
  assert.equal(config.dbQueryTimeoutMs, 800);
  assert.equal(config.dbPrepare, false);
});

Deno.test("LISTEN_HOST sets the address; HOSTNAME (a container's name under Docker and Kubernetes) is ignored", () => {
  assert.equal(loadConfig(env({ HOSTNAME: "some-container" })).hostname, "127.0.0.1");
  const production = { DATABASE_URL: DB, MAILGUN_WEBHOOK_SIGNING_KEY: KEY, HOSTNAME: "some-container" };
  assert.equal(loadConfig(env(production)).hostname, "0.0.0.0");
  assert.equal(loadConfig(env({ ...production, LISTEN_HOST: "127.0.0.1" })).hostname, "127.0.0.1");
});

Deno.test("the messages keep their form: the variable, what was expected, and the value unless it is secret", () => {
  assert.equal(errorOf({ PORT: "eighty" }), 'PORT must be a whole number from 0 to 65535 (got "eighty").');
  assert.equal(errorOf({ DB_PREPARE: "Maybe" }), 'DB_PREPARE must be true or false (got "maybe").');
  assert.equal(
    errorOf({ DATABASE_URL: "mysql://u:secret-password@h/db", MAILGUN_WEBHOOK_SIGNING_KEY: KEY }),
    "DATABASE_URL must start with postgres:// or postgresql:// (got mysql://).",
  );
  assert.equal(
    errorOf({ MAILGUN_WEBHOOK_SIGNING_KEY: " , " }),
    "MAILGUN_WEBHOOK_SIGNING_KEY holds no key (expected one key, or several separated by commas).",
  );
  // A key is never quoted, even a wrong one.
  const short = errorOf({ DATABASE_URL: DB, MAILGUN_WEBHOOK_SIGNING_KEY: `${KEY},abcdefghijklmno` });
  assert.ok(!short.includes("abcdefghijklmno"), short);
  assert.ok(!short.includes(KEY), short);
});

Deno.test("PGSSLMODE and the URL's sslmode take only PostgreSQL's values, PGSSLMODE in any case", () => {
  for (const mode of ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]) {
    const vars = { DATABASE_URL: DB, MAILGUN_WEBHOOK_SIGNING_KEY: KEY, PGSSLMODE: mode.toUpperCase() };
    assert.equal(loadConfig(env(vars)).sslMode, mode);
    assert.equal(loadConfig(env({ ...vars, PGSSLMODE: "", DATABASE_URL: `${DB}?sslmode=${mode}` })).sslMode, undefined);
  }
  for (const typo of ["requir", "required", "true", "on", "verify_full"]) {
    assert.match(errorOf({ PGSSLMODE: typo }), /^PGSSLMODE must be one of /, typo);
    const inUrl = errorOf({ DATABASE_URL: `${DB}?sslmode=${typo}`, MAILGUN_WEBHOOK_SIGNING_KEY: KEY });
    assert.match(inUrl, /^DATABASE_URL has sslmode="/, typo);
    assert.ok(!inUrl.includes("secret-password"));
  }
});

Deno.test("a signing key too short to be Mailgun's stops start-up, with or without a database", () => {
  for (const key of ["x", "changeme", "fifteen-chars-x"]) {
    assert.match(errorOf({ MAILGUN_WEBHOOK_SIGNING_KEY: key }), /^MAILGUN_WEBHOOK_SIGNING_KEY holds a key shorter/);
  }
  // Mailgun's formats pass: 32 hex characters, or key- and 32 characters (older accounts).
  for (const key of [KEY, "key-0p6mqbf74lb20gzq9f4dhpn9rg3zyk26", "sixteen-chars-xx"]) {
    assert.deepEqual(loadConfig(env({ DATABASE_URL: DB, MAILGUN_WEBHOOK_SIGNING_KEY: key })).signingKeys, [key]);
  }
});

Deno.test("every variable read has a default: an empty environment gives the documented values", () => {
  const config = loadConfig(env({}));
  assert.deepEqual(
    [config.bodyTimeoutMs, config.dbConnectTimeoutMs, config.dbQueryTimeoutMs, config.dbLockTimeoutMs],
    [10_000, 3_000, 5_000, 1_000],
  );
  assert.deepEqual(
    [config.webhookDeadlineMs, config.dbPoolMax, config.batchMax, config.batchInFlight, config.batchQueueMax],
    [6_000, 8, 128, 1, 1_024],
  );
  assert.equal(config.tokenPruneFirstDelayMs, 30_000);
  assert.equal(config.batchGatherMs, 0);
  assert.deepEqual(config.parentSigningKeys, []);
  assert.equal(config.sslMode, undefined);
});
