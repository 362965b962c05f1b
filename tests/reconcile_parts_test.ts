/** The small parts of reconcile: the send time in a Message-ID, its settings, Retry-After, and the tool database. */
import assert from "node:assert/strict";
import { ConfigError } from "../src/config/read_env.ts";
import { openToolDatabase } from "../src/db/open_tool_database.ts";
import { retryAfterMs } from "../src/reconcile/fetch_with_backoff.ts";
import { messageSentAt } from "../src/reconcile/message_sent_at.ts";
import { duration, loadReconcileConfig } from "../src/reconcile/reconcile_config.ts";

Deno.test("the send time is read from a Mailgun Message-ID, with or without brackets, and only from a real date", () => {
  const expected = new Date("2026-02-03T19:20:30Z");
  assert.deepEqual(messageSentAt("20260203192030.53383e583ab41f62@sample.mailgun.com"), expected);
  assert.deepEqual(messageSentAt("<20260203192030.53383e583ab41f62@sample.mailgun.com>"), expected);
  for (
    const undated of ["<1770146431.abc@mg.x>", "20260231120000.abc@mg.x", "20261301120000.x@y", "2026020319203.x@y"]
  ) {
    assert.equal(messageSentAt(undated), undefined, undated);
  }
  assert.equal(messageSentAt("20260203256030.x@y"), undefined);
});

Deno.test("reconcile settings: required key and domain, region hosts, durations, and bounds", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  const base = { MAILGUN_API_KEY: "key-1", MAILGUN_DOMAIN: "mg.example.com" };
  const us = loadReconcileConfig({}, env(base));
  assert.equal(us.baseUrl, "https://api.mailgun.net");
  assert.deepEqual([us.minAgeMs, us.maxAgeMs, us.limit], [3_600_000, 30 * 86_400_000, 1000]);
  assert.equal(loadReconcileConfig({}, env({ ...base, MAILGUN_REGION: "EU" })).baseUrl, "https://api.eu.mailgun.net");
  const flagged = loadReconcileConfig(
    { minAge: "0", maxAge: "2h", limit: "5" },
    env({ ...base, RECONCILE_MIN_AGE: "9h" }),
  );
  assert.deepEqual([flagged.minAgeMs, flagged.maxAgeMs, flagged.limit], [0, 7_200_000, 5]);
  const bad: [Record<string, string>, { minAge?: string }, RegExp][] = [
    [{ MAILGUN_DOMAIN: "mg.example.com" }, {}, /MAILGUN_API_KEY is required/],
    [{ MAILGUN_API_KEY: "k" }, {}, /MAILGUN_DOMAIN/],
    [{ ...base, MAILGUN_REGION: "asia" }, {}, /MAILGUN_REGION must be us or eu/],
    [{ ...base, MAILGUN_API_BASE_URL: "ftp://x" }, {}, /MAILGUN_API_BASE_URL/],
    [{ ...base, RECONCILE_MAX_ATTEMPTS: "0" }, {}, /RECONCILE_MAX_ATTEMPTS/],
    [base, { minAge: "an hour" }, /--min-age must be a duration/],
    [base, { minAge: "40d" }, /--max-age must be longer than --min-age/],
  ];
  for (const [vars, flags, message] of bad) {
    assert.throws(
      () => loadReconcileConfig(flags, env(vars)),
      (e: unknown) => e instanceof ConfigError && message.test(e.message),
    );
  }
  assert.equal(duration("x", "90s"), 90_000);
  assert.throws(() => duration("x", "5"), ConfigError);
});

Deno.test("Retry-After: seconds or an HTTP date", () => {
  assert.equal(retryAfterMs("3"), 3000);
  assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4_000), 6_000);
  assert.equal(retryAfterMs(null), undefined);
  assert.equal(retryAfterMs("soon"), undefined);
});

Deno.test("tools open the embedded files when the running service's URL file is stale", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mgwh-tooldb-" });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (listener.addr as Deno.NetAddr).port;
  listener.close();
  // What a crashed service leaves behind.
  await Deno.writeTextFile(`${dir}/embedded-url`, `postgres://postgres@127.0.0.1:${closedPort}/postgres\n`);
  const db = await openToolDatabase({}, dir);
  try {
    assert.match(db.description, /no service running/);
    const [row] = await db
      .sql`insert into documents (email_message_id, email_status) values ('<a@b>', 'SENT') returning id`;
    assert.equal(Number(row.id), 1);
  } finally {
    await db.close();
  }
  const again = await openToolDatabase({}, dir);
  try {
    const [row] = await again.sql`select count(*)::int as n from documents`;
    assert.equal(row.n, 1, "the files were kept");
  } finally {
    await again.close();
    await Deno.remove(dir, { recursive: true });
  }
});
