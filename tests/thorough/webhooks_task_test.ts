/**
 * `deno task webhooks` (src/cli/webhooks.ts) against a local fake of
 * Mailgun's domain Webhooks API, run as the task runs it (its permission
 * flags read from deno.json), and its parts in process.
 */
import assert from "node:assert/strict";
import { ConfigError } from "../../src/config/read_env.ts";
import { webhookUrlFor } from "../../src/mailgun_setup/webhook_events.ts";
import { planWebhooks } from "../../src/mailgun_setup/webhook_plan.ts";
import { parseWebhookList } from "../../src/mailgun_setup/webhooks_client.ts";
import { loadWebhooksConfig } from "../../src/mailgun_setup/webhooks_config.ts";
import {
  type FakeMailgunWebhooks,
  startFakeMailgunWebhooks,
  startSilentServer,
} from "../helpers/fake_mailgun_webhooks.ts";
import { PROJECT_DIR, run } from "../helpers/subprocess.ts";

const BASE = "https://app.comprobify.test";
const OURS = `${BASE}/v1/mailgun/webhook`;
const OLD = "https://old.comprobify.test/v1/mailgun/webhook";
const FOUR = ["delivered", "permanent_fail", "temporary_fail", "complained"];

/** The flags of the `webhooks` task in deno.json, all but `--env-file` (a developer's .env must not leak in). */
function taskFlags(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${PROJECT_DIR}deno.json`));
  const task = config.tasks.webhooks;
  const command: string = typeof task === "string" ? task : task.command;
  const words = command.trim().split(/\s+/);
  assert.deepEqual([words[0], words[1], words.at(-1)], ["deno", "run", "src/cli/webhooks.ts"]);
  return words.slice(2, -1).filter((flag) => flag !== "--env-file");
}

const FLAGS = taskFlags();

/** Runs the task against `fake` (or another base URL), checking that the key never reaches its output. */
async function webhooksTask(
  args: string[],
  target: { url: string; apiKey: string; domain: string },
  env: Record<string, string> = {},
) {
  const result = await run(["run", ...FLAGS, "src/cli/webhooks.ts", ...args], {
    env: {
      MAILGUN_API_KEY: target.apiKey,
      MAILGUN_DOMAIN: target.domain,
      MAILGUN_API_BASE_URL: target.url,
      ...env,
    },
  });
  assert.ok(!`${result.stdout}${result.stderr}`.includes(target.apiKey), "the API key is never printed");
  return result;
}

async function withFake(test: (fake: FakeMailgunWebhooks) => Promise<void>, options = {}): Promise<void> {
  const fake = startFakeMailgunWebhooks(options);
  try {
    await test(fake);
  } finally {
    await fake.close();
  }
}

const writes = (fake: FakeMailgunWebhooks) => fake.requests.filter((request) => request.method !== "GET");

Deno.test("webhooks task: --help prints the usage and sends nothing, even with nothing configured", async () => {
  await withFake(async (fake) => {
    const result = await webhooksTask(["--help", "--register", "--url", BASE], fake);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^Usage: deno task webhooks/);
    assert.match(result.stdout, /--check/);
    assert.equal(fake.requests.length, 0, "no request to Mailgun");
    const bare = await run(["run", ...FLAGS, "src/cli/webhooks.ts", "-h"]);
    assert.equal(bare.code, 0, bare.stderr);
    assert.match(bare.stdout, /MAILGUN_API_KEY/);
  });
});

Deno.test("webhooks task: lists what is registered and what would change, and changes nothing", async () => {
  await withFake(async (fake) => {
    fake.webhooks.set("delivered", [OURS]);
    fake.webhooks.set("temporary_fail", [OLD]);
    fake.webhooks.set("opened", ["https://analytics.comprobify.test/hook"]);
    const result = await webhooksTask(["--url", BASE], fake);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.split("\n");
    assert.ok(lines.some((line) => /delivered +ok +https:\/\/app\.comprobify\.test\/v1\/mailgun\/webhook$/.test(line)));
    assert.ok(lines.some((line) => /permanent_fail +missing +\(no URL\) +-> --register creates it/.test(line)));
    assert.ok(
      lines.some((line) => /temporary_fail +elsewhere +https:\/\/old\..* -> --register adds this URL/.test(line)),
    );
    assert.match(result.stdout, /opened: https:\/\/analytics\.comprobify\.test\/hook/, "other webhooks are shown");
    assert.match(result.stdout, /3 of 4 webhooks need a change: run with --register/);
    assert.equal(writes(fake).length, 0, "listing writes nothing");
    assert.deepEqual(fake.webhooks.get("temporary_fail"), [OLD]);
  });
});

Deno.test("webhooks task: registers the four from nothing as forms, then --check passes and a second run changes nothing", async () => {
  await withFake(async (fake) => {
    const result = await webhooksTask(["--register", "--url", `${BASE}/`], fake);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /Registered: 4 changed; all 4 webhooks now send to https:\/\/app\.comprobify\.test\/v1\/mailgun\/webhook/,
    );
    for (const name of FOUR) assert.deepEqual(fake.webhooks.get(name), [OURS], name);
    const posts = writes(fake);
    assert.deepEqual(posts.map((request) => request.method), ["POST", "POST", "POST", "POST"]);
    for (const post of posts) {
      assert.equal(post.path, `/v3/domains/${fake.domain}/webhooks`);
      assert.match(post.contentType, /^multipart\/form-data; *boundary=/);
      assert.deepEqual(post.fields.map(([name]) => name), ["id", "url"]);
      assert.equal(post.status, 200);
    }
    assert.deepEqual([...fake.webhooks.keys()].sort(), [...FOUR].sort(), "only the four");

    const check = await webhooksTask(["--check", "--url", BASE], fake);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /Check passed: all 4 webhooks send to this URL/);

    const before = fake.requests.length;
    const again = await webhooksTask(["--apply", "--url", BASE], fake);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Nothing to change/);
    assert.ok(fake.requests.slice(before).every((request) => request.method === "GET"), "nothing is written twice");
  });
});

Deno.test("webhooks task: a webhook sending elsewhere gets this URL added, the other kept; other webhooks untouched", async () => {
  await withFake(async (fake) => {
    for (const name of FOUR) fake.webhooks.set(name, [OURS]);
    fake.webhooks.set("permanent_fail", [OLD]);
    fake.webhooks.set("clicked", [OLD]);
    const result = await webhooksTask(["--register"], fake, { WEBHOOK_PUBLIC_URL: BASE });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /updated permanent_fail \(kept 1 other URL\)/);
    assert.deepEqual(fake.webhooks.get("permanent_fail"), [OLD, OURS]);
    assert.deepEqual(fake.webhooks.get("clicked"), [OLD]);
    const [put, ...more] = writes(fake);
    assert.equal(more.length, 0);
    assert.equal(put.method, "PUT");
    assert.equal(put.path, `/v3/domains/${fake.domain}/webhooks/permanent_fail`);
    assert.deepEqual(put.fields, [["url", OLD], ["url", OURS]]);
  });
});

Deno.test("webhooks task: a webhook already holding three other URLs is named and left alone", async () => {
  await withFake(async (fake) => {
    const three = ["https://a.test/h", "https://b.test/h", "https://c.test/h"];
    fake.webhooks.set("complained", three);
    const result = await webhooksTask(["--register", "--url", BASE], fake);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /Register incomplete: complained points elsewhere/);
    assert.match(result.stderr, /complained already has the 3 URLs Mailgun allows: remove one/);
    assert.deepEqual(fake.webhooks.get("complained"), three);
    for (const name of ["delivered", "permanent_fail", "temporary_fail"]) {
      assert.deepEqual(fake.webhooks.get(name), [OURS], "the others are registered all the same");
    }
  });
});

Deno.test("webhooks task: --check fails naming what is missing and what points elsewhere", async () => {
  await withFake(async (fake) => {
    fake.webhooks.set("delivered", [OURS]);
    fake.webhooks.set("temporary_fail", [OURS, OLD]);
    fake.webhooks.set("permanent_fail", [OLD]);
    const result = await webhooksTask(["--check", "--url", BASE], fake);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /Check failed: permanent_fail points elsewhere \(https:\/\/old\.comprobify\.test\/v1\/mailgun\/webhook\); complained is missing\. Run with --register/,
    );
    assert.doesNotMatch(result.stderr, /delivered|temporary_fail/, "one of several URLs being this one is enough");
    assert.equal(writes(fake).length, 0);
  });
});

Deno.test("webhooks task: webhooks listed without URLs (as the reference's example shows them) count as missing", async () => {
  await withFake(async (fake) => {
    const result = await webhooksTask(["--register", "--url", BASE], fake);
    assert.equal(result.code, 0, result.stderr);
    for (const name of FOUR) assert.deepEqual(fake.webhooks.get(name), [OURS]);
  }, { listUnset: true });
});

Deno.test("webhooks task: a webhook that exists without URLs, so that POST is refused, gets them by PUT", async () => {
  await withFake(async (fake) => {
    fake.webhooks.set("complained", []);
    const result = await webhooksTask(["--register", "--url", BASE], fake);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(fake.webhooks.get("complained"), [OURS]);
    const complained = writes(fake).filter((request) =>
      request.path.endsWith("/complained") || request.fields.some(([, value]) => value === "complained")
    );
    assert.deepEqual(complained.map((request) => [request.method, request.status]), [["POST", 400], ["PUT", 200]]);
  });
});

Deno.test("webhooks task: a wrong key gets Mailgun's 401 and says which key to check", async () => {
  await withFake(async (fake) => {
    const result = await webhooksTask(["--check", "--url", BASE], { ...fake, apiKey: "key-wrong-0123456789" });
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /answered GET \/v3\/domains\/mg\.comprobify\.test\/webhooks with 401 \(Invalid private key\)/,
    );
    assert.match(result.stderr, /MAILGUN_API_KEY \(a private API key, not the webhook signing key\)/);
  });
});

Deno.test("webhooks task: an unknown domain gets Mailgun's 404 and names the domain", async () => {
  await withFake(async (fake) => {
    const result = await webhooksTask(["--domain", "mg.other.test", "--url", BASE], fake);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /with 404 \(Domain not found\): it does not know the domain mg\.other\.test/);
  });
});

Deno.test("webhooks task: a Mailgun that never answers is given up on within the request bound", async () => {
  const silent = startSilentServer();
  try {
    const started = performance.now();
    const result = await webhooksTask(["--check", "--url", BASE], {
      url: silent.url,
      apiKey: "key-silent-0123456789",
      domain: "mg.comprobify.test",
    }, { WEBHOOKS_REQUEST_TIMEOUT_MS: "500" });
    const elapsed = performance.now() - started;
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /Mailgun \(127\.0\.0\.1:\d+\) did not answer GET \/v3\/domains\/mg\.comprobify\.test\/webhooks within 0\.5 s/,
    );
    assert.ok(silent.connections() >= 1, "the request did reach the silent server");
    // The child's own start-up (a few seconds on a cold cache) plus the 0.5 s bound; never the default 10 s, never forever.
    assert.ok(elapsed < 9_000, `gave up after ${Math.round(elapsed)} ms`);
  } finally {
    silent.close();
  }
});

Deno.test("webhooks task: bad settings stop it with a message naming the setting", async () => {
  await withFake(async (fake) => {
    const noUrl = await webhooksTask([], fake);
    assert.equal(noUrl.code, 1);
    assert.match(noUrl.stderr, /--url \(or WEBHOOK_PUBLIC_URL\) is required/);
    const both = await webhooksTask(["--check", "--register", "--url", BASE], fake);
    assert.equal(both.code, 2);
    assert.equal(fake.requests.length, 0);
  });
});

Deno.test("webhooks settings and parts: URL, region, list shapes and the plan", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  const base = { MAILGUN_API_KEY: "key-1", MAILGUN_DOMAIN: "mg.example.com", WEBHOOK_PUBLIC_URL: BASE };
  const us = loadWebhooksConfig({}, env(base));
  assert.deepEqual(
    [us.baseUrl, us.domain, us.webhookUrl, us.timeoutMs],
    ["https://api.mailgun.net", "mg.example.com", OURS, 10_000],
  );
  assert.equal(loadWebhooksConfig({}, env({ ...base, MAILGUN_REGION: "eu" })).baseUrl, "https://api.eu.mailgun.net");
  const flagged = loadWebhooksConfig({ domain: "mg.flag.test", url: "https://flag.test" }, env(base));
  assert.deepEqual([flagged.domain, flagged.webhookUrl], ["mg.flag.test", "https://flag.test/v1/mailgun/webhook"]);
  const bad: [Record<string, string>, RegExp][] = [
    [{ ...base, MAILGUN_API_KEY: "" }, /MAILGUN_API_KEY is required/],
    [{ ...base, MAILGUN_DOMAIN: "" }, /--domain \(or MAILGUN_DOMAIN\)/],
    [{ ...base, MAILGUN_REGION: "asia" }, /MAILGUN_REGION must be one of us, eu/],
    [{ ...base, WEBHOOK_PUBLIC_URL: "http://app.example.com" }, /must be an https URL/],
    [{ ...base, WEBHOOK_PUBLIC_URL: "https://user:secret@app.example.com" }, /got a URL with credentials/],
    [{ ...base, WEBHOOKS_REQUEST_TIMEOUT_MS: "0" }, /WEBHOOKS_REQUEST_TIMEOUT_MS/],
  ];
  for (const [vars, message] of bad) {
    assert.throws(
      () => loadWebhooksConfig({}, env(vars)),
      (e: unknown) => e instanceof ConfigError && message.test(e.message) && !e.message.includes("secret"),
    );
  }
  assert.equal(
    webhookUrlFor("https://app.example.com/v1/mailgun/webhook"),
    "https://app.example.com/v1/mailgun/webhook",
  );
  assert.equal(webhookUrlFor("https://app.example.com/api/"), "https://app.example.com/api/v1/mailgun/webhook");
  assert.equal(webhookUrlFor("https://app.example.com/?x=1"), undefined);

  assert.deepEqual(
    parseWebhookList({
      webhooks: { delivered: { urls: [OURS] }, opened: {}, clicked: { url: OLD }, complained: { urls: [] } },
    }),
    { delivered: [OURS], clicked: [OLD] },
    "urls, the older single url, and webhooks without any",
  );
  assert.throws(() => parseWebhookList({ items: [] }), /without a webhooks object/);

  const plan = planWebhooks({ delivered: ["https://APP.comprobify.test:443/v1/mailgun/webhook"] }, OURS);
  assert.deepEqual(plan.map((item) => [item.name, item.state, item.action]), [
    ["delivered", "ok", "none"],
    ["permanent_fail", "missing", "create"],
    ["temporary_fail", "missing", "create"],
    ["complained", "missing", "create"],
  ]);
});
