/** Reconcile's settings (src/reconcile/reconcile_config.ts). */
import assert from "node:assert/strict";
import { ConfigError } from "../src/config/read_env.ts";
import { duration, loadReconcileConfig } from "../src/reconcile/reconcile_config.ts";

Deno.test("reconcile settings: required key and domain, region hosts, durations, and bounds", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  const base = { MAILGUN_API_KEY: "key-1", MAILGUN_DOMAIN: "mg.example.com" };
  const us = loadReconcileConfig({}, env(base));
  assert.equal(us.baseUrl, "https://api.mailgun.net");
  assert.deepEqual([us.minAgeMs, us.maxAgeMs, us.limit], [3_600_000, 30 * 86_400_000, 10_000]);
  assert.equal(loadReconcileConfig({}, env({ ...base, MAILGUN_REGION: "EU" })).baseUrl, "https://api.eu.mailgun.net");
  assert.equal(us.api, "logs", "the Logs API by default");
  assert.equal(loadReconcileConfig({ api: "events" }, env(base)).api, "events");
  assert.equal(loadReconcileConfig({}, env({ ...base, RECONCILE_API: "EVENTS" })).api, "events");
  assert.equal("region" in us, false, "the region is only read to choose the host");
  assert.equal(us.rescanLabel, undefined, "no full rescan asked for");
  assert.equal(loadReconcileConfig({}, env({ ...base, RECONCILE_RESCAN: " 2026-12-07 " })).rescanLabel, "2026-12-07");
  assert.equal(loadReconcileConfig({}, env({ ...base, RECONCILE_RESCAN: " " })).rescanLabel, undefined);
  const flagged = loadReconcileConfig(
    { minAge: "0", maxAge: "2h", limit: "5" },
    env({ ...base, RECONCILE_MIN_AGE: "9h" }),
  );
  assert.deepEqual([flagged.minAgeMs, flagged.maxAgeMs, flagged.limit], [0, 7_200_000, 5]);
  const bad: [Record<string, string>, { minAge?: string; api?: string }, RegExp][] = [
    [{ MAILGUN_DOMAIN: "mg.example.com" }, {}, /MAILGUN_API_KEY is required/],
    [{ MAILGUN_API_KEY: "k" }, {}, /MAILGUN_DOMAIN/],
    [{ ...base, MAILGUN_REGION: "asia" }, {}, /MAILGUN_REGION must be one of us, eu \(got "asia"\)/],
    [{ ...base, MAILGUN_API_BASE_URL: "ftp://x" }, {}, /MAILGUN_API_BASE_URL/],
    [{ ...base, RECONCILE_MAX_ATTEMPTS: "0" }, {}, /RECONCILE_MAX_ATTEMPTS/],
    [base, { minAge: "an hour" }, /--min-age must be a duration/],
    [base, { minAge: "40d" }, /--max-age must be longer than --min-age/],
    [base, { api: "v4" }, /--api must be logs or events/],
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
