/** `deno task simulate`: realistic events, signed with the service's key, that the service applies. */
import assert from "node:assert/strict";
import { parseEventData } from "../../src/mailgun/parse_event_data.ts";
import { buildEvent, SIMULATED_KINDS } from "../../src/simulate/build_event.ts";
import { z } from "zod";
import { readEnv } from "../../src/config/read_env.ts";
import { SERVICE_VARIABLES } from "../../src/config/service_config.ts";
import { simulateSigningKey } from "../../src/simulate/simulate_signing_key.ts";
import { run } from "../helpers/subprocess.ts";
import { insertRow, newMessageId, rowState, startTestService, type TestService } from "../helpers/test_service.ts";

let svc: TestService;

Deno.test.beforeAll(async () => {
  svc = await startTestService();
});

Deno.test.afterAll(async () => {
  await svc.close();
});

Deno.test("each simulated event is one the webhook understands, with the bare message id", () => {
  const expected = {
    delivered: ["EMAIL_DELIVERED", "DELIVERED"],
    failed: ["EMAIL_FAILED", "FAILED"],
    "temporary-failure": ["EMAIL_TEMP_FAILED", null],
    complained: ["EMAIL_COMPLAINED", "COMPLAINED"],
    opened: null,
  } as const;
  for (const kind of SIMULATED_KINDS) {
    const data = buildEvent(kind, "<20260203192030.53383e583ab41f62@mg.example.com>");
    const parsed = parseEventData(data);
    const effect = expected[kind];
    assert.deepEqual(parsed.effect === null ? null : [parsed.effect.type, parsed.effect.status], effect, kind);
    assert.match(parsed.id ?? "", /^[A-Za-z0-9_-]{22}$/);
    if (parsed.effect !== null) {
      assert.equal(parsed.messageId, "20260203192030.53383e583ab41f62@mg.example.com");
      assert.ok(Math.abs(parsed.timestamp - Date.now() / 1000) < 60);
    }
  }
  assert.notEqual(buildEvent("delivered", "a@b").id, buildEvent("delivered", "a@b").id);
});

Deno.test("the key: MAILGUN_WEBHOOK_SIGNING_KEY's first, else the development key, else a clear error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mgwh-simulate-" });
  try {
    const keys = z.object({ MAILGUN_WEBHOOK_SIGNING_KEY: SERVICE_VARIABLES.MAILGUN_WEBHOOK_SIGNING_KEY });
    const env = (vars: Record<string, string>) => readEnv(keys, (name) => vars[name]).MAILGUN_WEBHOOK_SIGNING_KEY;
    assert.equal(
      (await simulateSigningKey(
        env({ MAILGUN_WEBHOOK_SIGNING_KEY: " new-webhook-signing-key , old-webhook-signing-key" }),
        dir,
      )).key,
      "new-webhook-signing-key",
    );
    await assert.rejects(() => simulateSigningKey(env({}), dir), /No signing key: set MAILGUN_WEBHOOK_SIGNING_KEY/);
    await Deno.writeTextFile(`${dir}/dev-signing-key`, "dev-abc\n");
    const dev = await simulateSigningKey(env({}), dir);
    assert.equal(dev.key, "dev-abc");
    assert.match(dev.source, /development key/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task simulate delivered: the service answers 200 and the document is DELIVERED", async () => {
  const messageId = newMessageId();
  const id = await insertRow(svc.sql, "documents", messageId);
  const env = { MAILGUN_WEBHOOK_SIGNING_KEY: svc.key };
  const result = await run(["task", "simulate", "delivered", messageId, "--url", svc.url], { env });
  assert.equal(result.code, 0, result.stderr + result.stdout);
  assert.match(result.stdout, /Simulating delivered for message /);
  assert.match(result.stdout, /signed with MAILGUN_WEBHOOK_SIGNING_KEY/);
  assert.match(result.stdout, /^200 \{"ok":true,"outcome":"applied"\}$/m);
  assert.match(result.stdout, /^Outcome: applied \(/m);
  assert.ok(!result.stdout.includes(svc.key), "the key is never printed");
  const state = await rowState(svc.sql, "documents", id);
  assert.equal(state.status, "DELIVERED");
  assert.equal(state.events.length, 1);

  const complained = await run(["task", "simulate", "complained", messageId, "--url", svc.url], { env });
  assert.equal(complained.code, 0, complained.stdout);
  assert.equal((await rowState(svc.sql, "documents", id)).status, "COMPLAINED");
});

Deno.test("deno task simulate: a wrong key shows the 401 and exits 1; bad usage exits 2; no service exits 1", async () => {
  const wrong = await run(["task", "simulate", "failed", newMessageId(), "--url", svc.url], {
    env: { MAILGUN_WEBHOOK_SIGNING_KEY: "not-the-key-of-the-service" },
  });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stdout, /^401 /m);
  assert.match(wrong.stderr, /verifies with another key/);

  const usage = await run(["task", "simulate", "bounced", "x@y"], {
    env: { MAILGUN_WEBHOOK_SIGNING_KEY: "simulate-test-signing-key" },
  });
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /Unknown event "bounced"/);

  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const down = await run(["task", "simulate", "delivered", "x@y", "--url", `http://127.0.0.1:${closedPort}`], {
    env: { MAILGUN_WEBHOOK_SIGNING_KEY: "simulate-test-signing-key" },
  });
  assert.equal(down.code, 1);
  assert.match(down.stderr, /Is the service running\? Start it with deno task start/);
});
