/**
 * End-to-end: the service over HTTP on a real database (PostgreSQL when
 * DATABASE_URL is set, else the embedded one), checking the rows it writes.
 */
import assert from "node:assert/strict";
import { signWebhook } from "../src/mailgun/sign_webhook.ts";
import { eventData, loadPayload, post, signedBody } from "./helpers/mailgun.ts";
import { insertRow, newMessageId, rowState, startTestService, type TestService } from "./helpers/test_service.ts";

let svc: TestService;

async function count(table: "email_events" | "webhook_tokens"): Promise<number> {
  const [row] = table === "email_events"
    ? await svc.sql`select count(*)::int as n from email_events`
    : await svc.sql`select count(*)::int as n from mailgun_webhook.tokens`;
  return row.n;
}

async function send(data: unknown, signature?: Parameters<typeof signedBody>[2]) {
  const { body } = signedBody(svc.key, data, signature);
  return await post(svc.url, body);
}

Deno.test.beforeAll(async () => {
  svc = await startTestService();
});

Deno.test.afterAll(async () => {
  await svc.close();
});

Deno.test("tracked events: each writes its status and one entry per recipient event", async (t) => {
  await t.step("delivered: status DELIVERED and one EMAIL_DELIVERED entry (Mailgun's payload)", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const data = eventData("delivered", messageId.slice(1, -1));
    const response = await send(data);
    assert.equal(response.status, 200);
    assert.deepEqual(response.json, { ok: true, outcome: "applied" });
    const state = await rowState(svc.sql, "documents", id);
    assert.equal(state.status, "DELIVERED");
    assert.equal(state.events.length, 1);
    assert.equal(state.events[0].type, "EMAIL_DELIVERED");
    assert.equal(state.events[0].mailgun_event_id, data.id);
    assert.equal(state.events[0].recipient, "recipient@sample.mailgun.com");
    assert.ok(Math.abs(state.events[0].ts - (data.timestamp as number)) < 1e-5);
    const [stored] = await svc.sql`select event_data, received_at from email_events where document_id = ${id}`;
    const eventDataStored = typeof stored.event_data === "string" ? JSON.parse(stored.event_data) : stored.event_data;
    assert.deepEqual(eventDataStored, data);
    assert.ok(stored.received_at instanceof Date);
  });

  await t.step("failed permanent: status FAILED, EMAIL_FAILED with severity and reason", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    assert.equal((await send(eventData("permanent", messageId))).status, 200);
    const state = await rowState(svc.sql, "documents", id);
    assert.equal(state.status, "FAILED");
    assert.deepEqual(
      state.events.map((e) => [e.type, e.severity, e.reason]),
      [["EMAIL_FAILED", "permanent", "bounce"]],
    );
  });

  await t.step("failed temporary: status unchanged, EMAIL_TEMP_FAILED appended", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    assert.equal((await send(eventData("temporary", messageId))).status, 200);
    const state = await rowState(svc.sql, "documents", id);
    assert.equal(state.status, "SENT");
    assert.equal(state.statusAt, null);
    assert.deepEqual(state.events.map((e) => [e.type, e.severity, e.reason]), [[
      "EMAIL_TEMP_FAILED",
      "temporary",
      "generic",
    ]]);
  });

  await t.step("complained: status COMPLAINED, EMAIL_COMPLAINED appended", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    assert.equal((await send(eventData("complained", messageId))).status, 200);
    const state = await rowState(svc.sql, "documents", id);
    assert.equal(state.status, "COMPLAINED");
    assert.deepEqual(state.events.map((e) => e.type), ["EMAIL_COMPLAINED"]);
  });

  await t.step("a final give-up with reason old is a permanent failure", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    assert.equal((await send(eventData("permanent", messageId, { reason: "old" }))).status, 200);
    const state = await rowState(svc.sql, "documents", id);
    assert.equal(state.status, "FAILED");
    assert.equal(state.events[0].reason, "old");
  });

  await t.step("one message to several recipients: one entry per recipient event", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const a = eventData("delivered", messageId, { recipient: "a@example.com" });
    const b = eventData("permanent", messageId, { recipient: "b@example.com" });
    assert.equal((await send(a)).status, 200);
    assert.equal((await send(b)).status, 200);
    const state = await rowState(svc.sql, "documents", id);
    assert.equal(state.status, "FAILED");
    assert.deepEqual(state.events.map((e) => e.recipient).sort(), ["a@example.com", "b@example.com"]);
  });

  await t.step("quirks: user-variables [], delivery-status null, description null or empty", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const data = eventData("delivered", messageId, { "user-variables": [], "delivery-status": null });
    const other = eventData("temporary", messageId, {
      "delivery-status": { ...(loadPayload("failed-temporary")["delivery-status"] as object), description: "" },
      "user-variables": { invoice: "F-1" },
    });
    assert.equal((await send(data)).status, 200);
    assert.equal((await send(other)).status, 200);
    assert.equal((await rowState(svc.sql, "documents", id)).events.length, 2);
  });
});

Deno.test("matching: a message id finds documents and tenants", async (t) => {
  await t.step("tenants are tracked like documents", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "tenants", messageId);
    assert.equal((await send(eventData("delivered", messageId))).status, 200);
    assert.equal((await send(eventData("complained", messageId))).status, 200);
    const state = await rowState(svc.sql, "tenants", id);
    assert.equal(state.status, "COMPLAINED");
    assert.deepEqual(state.events.map((e) => e.type).sort(), ["EMAIL_COMPLAINED", "EMAIL_DELIVERED"]);
    const [row] = await svc
      .sql`select count(*)::int as n from email_events where tenant_id = ${id} and document_id is null`;
    assert.equal(row.n, 2);
  });

  await t.step("message id matches whether stored with or without angle brackets", async () => {
    const bare = newMessageId().slice(1, -1);
    const stored = newMessageId();
    const a = await insertRow(svc.sql, "documents", bare);
    const b = await insertRow(svc.sql, "documents", stored);
    // Mailgun sends it bare; a payload carrying brackets is matched too.
    assert.equal((await send(eventData("delivered", bare))).status, 200);
    assert.equal((await send(eventData("delivered", stored))).status, 200);
    assert.equal((await rowState(svc.sql, "documents", a)).status, "DELIVERED");
    assert.equal((await rowState(svc.sql, "documents", b)).status, "DELIVERED");
  });

  await t.step("a message id shared by a document and a tenant updates both", async () => {
    const messageId = newMessageId();
    const doc = await insertRow(svc.sql, "documents", messageId);
    const tenant = await insertRow(svc.sql, "tenants", messageId);
    await send(eventData("delivered", messageId));
    const log = svc.logs.at(-1)!;
    assert.equal(log.rows, 2);
    assert.equal((await rowState(svc.sql, "documents", doc)).status, "DELIVERED");
    assert.equal((await rowState(svc.sql, "tenants", tenant)).status, "DELIVERED");
  });
});

Deno.test("status ladder: order of arrival never moves a status down", async (t) => {
  await t.step("a late delivered never moves FAILED or COMPLAINED down, but is still recorded", async () => {
    for (const first of ["permanent", "complained"] as const) {
      const messageId = newMessageId();
      const id = await insertRow(svc.sql, "documents", messageId);
      assert.equal((await send(eventData(first, messageId))).status, 200);
      assert.equal((await send(eventData("delivered", messageId))).status, 200);
      const state = await rowState(svc.sql, "documents", id);
      assert.equal(state.status, first === "permanent" ? "FAILED" : "COMPLAINED");
      assert.equal(state.events.length, 2);
    }
  });

  await t.step("a delayed bounce after delivered moves the status to FAILED", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    assert.equal((await send(eventData("delivered", messageId))).status, 200);
    assert.equal((await send(eventData("delayed-bounce", messageId))).status, 200);
    const state = await rowState(svc.sql, "documents", id);
    assert.equal(state.status, "FAILED");
    assert.deepEqual(state.events.map((e) => e.type).sort(), ["EMAIL_DELIVERED", "EMAIL_FAILED"]);
  });
});

Deno.test("ignored and unmatched events: 200, nothing written", async (t) => {
  await t.step("ignored event types and unknown message ids: 200, nothing written, one log line", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const before = await count("email_events");
    for (const event of ["opened", "clicked", "unsubscribed", "accepted", "stored"]) {
      const lines = svc.logs.length;
      const response = await send(eventData("opened", messageId, { event }));
      assert.equal(response.status, 200);
      assert.deepEqual(response.json, { ok: true, outcome: "ignored" });
      assert.equal(svc.logs.length, lines + 1);
      assert.equal(svc.logs.at(-1)!.outcome, "ignored");
    }
    const unknown = await send(eventData("delivered", newMessageId()));
    assert.equal(unknown.status, 200);
    assert.deepEqual(unknown.json, { ok: true, outcome: "unmatched" });
    assert.equal(svc.logs.at(-1)!.outcome, "unmatched");
    assert.equal(svc.logs.at(-1)!.rows, 0);
    assert.equal(await count("email_events"), before);
    assert.equal((await rowState(svc.sql, "documents", id)).status, "SENT");
  });

  await t.step(
    "a signed, tracked event with no message id: 200 unmatched, its token spent and bound to its body",
    async () => {
      // Our own fixture in the shape of a delayed bounce Mailgun sends after `delivered`: no envelope, no headers.
      const delayedBounce = {
        event: "failed",
        id: `hb-${crypto.randomUUID()}`,
        timestamp: Date.now() / 1000 - 120.25,
        severity: "permanent",
        reason: "bounce",
        recipient: "someone@example.net",
        flags: { "is-delayed-bounce": true, "is-authenticated": true },
        envelope: {},
        message: { headers: {}, attachments: [], size: 0 },
        "delivery-status": { code: 550, message: "No such mailbox", description: "" },
        "user-variables": [],
      };
      const { message: _m, ...noMessage } = eventData("delivered", "x@y");
      const cases: Record<string, unknown> = {
        "delayed bounce, headers {}": delayedBounce,
        "delivered without message": noMessage,
        "complained, message null": eventData("complained", "x@y", { message: null }),
        "empty message-id": eventData("delivered", "x@y", { message: { headers: { "message-id": "<>" } } }),
      };
      const eventsBefore = await count("email_events");
      for (const [name, data] of Object.entries(cases)) {
        const { body, signature } = signedBody(svc.key, data);
        const response = await post(svc.url, body);
        assert.equal(response.status, 200, name);
        assert.equal(svc.logs.at(-1)!.outcome, "unmatched", name);
        // A re-delivery of the same body is fine; the same signature with another body is a replay.
        assert.equal((await post(svc.url, body)).status, 200, name);
        const messageId = newMessageId();
        const id = await insertRow(svc.sql, "documents", messageId);
        const forged = signedBody(svc.key, eventData("complained", messageId), signature);
        assert.equal((await post(svc.url, forged.body)).status, 401, name);
        assert.equal(svc.logs.at(-1)!.outcome, "replayed", name);
        assert.equal((await rowState(svc.sql, "documents", id)).status, "SENT", name);
      }
      assert.equal(await count("email_events"), eventsBefore);
    },
  );
});

Deno.test("duplicates: a re-delivered event has one effect", async (t) => {
  await t.step("re-delivery with the same signature and body: 200 duplicate, no second effect", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const { body } = signedBody(svc.key, eventData("delivered", messageId));
    assert.deepEqual((await post(svc.url, body)).json, { ok: true, outcome: "applied" });
    const again = await post(svc.url, body);
    assert.equal(again.status, 200);
    assert.deepEqual(again.json, { ok: true, outcome: "duplicate", duplicate: true });
    assert.equal((await rowState(svc.sql, "documents", id)).events.length, 1);
    assert.equal(svc.logs.at(-1)!.outcome, "duplicate");
  });

  await t.step("re-delivery of the same event (id, timestamp) under a fresh signature: no second effect", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const data = eventData("permanent", messageId);
    assert.equal((await send(data)).status, 200);
    const again = await send(data);
    assert.equal(again.status, 200);
    assert.equal(again.json.duplicate, true);
    assert.equal((await rowState(svc.sql, "documents", id)).events.length, 1);
  });

  await t.step("the same event id on another day (another timestamp) is another event", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const data = eventData("temporary", messageId);
    assert.equal((await send(data)).status, 200);
    assert.equal((await send({ ...data, timestamp: (data.timestamp as number) + 86_400 })).status, 200);
    assert.equal((await rowState(svc.sql, "documents", id)).events.length, 2);
  });

  await t.step("concurrent deliveries of the same request are applied once", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const data = eventData("delivered", messageId);
    const { body } = signedBody(svc.key, data);
    const resigned = await Promise.all(Array.from({ length: 5 }, () => signedBody(svc.key, data)));
    const responses = await Promise.all([
      ...Array.from({ length: 10 }, () => post(svc.url, body)),
      ...resigned.map((r) => post(svc.url, r.body)),
    ]);
    assert.ok(responses.every((r) => r.status === 200), JSON.stringify(responses.map((r) => r.status)));
    assert.equal(responses.filter((r) => r.json.duplicate !== true).length, 1);
    assert.equal((await rowState(svc.sql, "documents", id)).events.length, 1);
    const [tokens] = await svc.sql`select count(*)::int as n from mailgun_webhook.tokens
                                   where token = any(${[
      JSON.parse(body).signature.token,
      ...resigned.map((r) => r.signature.token),
    ]})`;
    assert.equal(tokens.n, 6);
  });
});

Deno.test("replay: a token is spent once and bound to its event-data", async (t) => {
  await t.step("a used token with a different body: 401, nothing written", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const first = signedBody(svc.key, eventData("delivered", messageId));
    assert.equal((await post(svc.url, first.body)).status, 200);
    const forged = signedBody(svc.key, eventData("complained", messageId), first.signature);
    const response = await post(svc.url, forged.body);
    assert.equal(response.status, 401);
    assert.equal(svc.logs.at(-1)!.outcome, "replayed");
    const state = await rowState(svc.sql, "documents", id);
    assert.equal(state.status, "DELIVERED");
    assert.equal(state.events.length, 1);
  });

  await t.step("a token is bound to the event-data, not to its formatting", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const data = eventData("delivered", messageId);
    const first = signedBody(svc.key, data);
    assert.equal((await post(svc.url, first.body)).status, 200);
    const reordered = Object.fromEntries(Object.entries(data).reverse());
    const pretty = JSON.stringify({ "event-data": reordered, signature: first.signature }, null, 2);
    const response = await post(svc.url, pretty);
    assert.equal(response.status, 200);
    assert.equal(response.json.duplicate, true);
    assert.equal((await rowState(svc.sql, "documents", id)).events.length, 1);
  });

  await t.step("the signature of an ignored event cannot carry another body", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const opened = signedBody(svc.key, eventData("opened", messageId));
    assert.equal((await post(svc.url, opened.body)).status, 200);
    const forged = signedBody(svc.key, eventData("complained", messageId), opened.signature);
    assert.equal((await post(svc.url, forged.body)).status, 401);
    assert.equal((await rowState(svc.sql, "documents", id)).status, "SENT");
  });

  await t.step("distinct events signed in the same second are all accepted", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const timestamp = String(Math.floor(Date.now() / 1000));
    const responses = await Promise.all(
      (["temporary", "temporary", "delivered", "complained"] as const).map((kind) =>
        send(eventData(kind, messageId), { timestamp })
      ),
    );
    assert.deepEqual(responses.map((r) => r.status), [200, 200, 200, 200]);
    const state = await rowState(svc.sql, "documents", id);
    assert.equal(state.status, "COMPLAINED");
    assert.equal(state.events.length, 4);
  });
});

Deno.test("signature: 401 for any signature that does not verify", async (t) => {
  await t.step("signature failures get 401 and write nothing", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const data = eventData("complained", messageId);
    const good = signWebhook(svc.key);
    const wrongKey = signWebhook("not-the-key");
    const cases: Record<string, unknown> = {
      "wrong key": wrongKey,
      "tampered signature": { ...good, signature: good.signature.replace(/^./, (c) => (c === "0" ? "1" : "0")) },
      "tampered token": { ...good, token: good.token.replace(/^./, (c) => (c === "a" ? "b" : "a")) },
      "tampered timestamp": { ...good, timestamp: String(Number(good.timestamp) - 1) },
      "missing block": undefined,
      "block not an object": "abc",
      "missing signature": { timestamp: good.timestamp, token: good.token },
      "short signature": { ...good, signature: good.signature.slice(0, 10) },
      "non-hex signature": { ...good, signature: "z".repeat(64) },
      "numeric token": { ...good, token: 12345 },
      "timestamp not digits": { ...good, timestamp: "12.5" },
      "empty token": { ...good, token: "" },
    };
    const before = await count("webhook_tokens");
    for (const [name, signature] of Object.entries(cases)) {
      const response = await post(svc.url, JSON.stringify({ signature, "event-data": data }));
      assert.equal(response.status, 401, name);
      assert.equal(svc.logs.at(-1)!.outcome, "unauthorized", name);
    }
    assert.equal(await count("webhook_tokens"), before);
    assert.equal((await rowState(svc.sql, "documents", id)).events.length, 0);
  });

  await t.step("signature timestamps: 23 h old accepted, over 24 h old or 5 min ahead refused", async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases: [number, number][] = [
      [now - 23 * 3600, 200],
      [now - 24 * 3600 - 60, 401],
      [now + 240, 200],
      [now + 360, 401],
    ];
    for (const [timestamp, expected] of cases) {
      const messageId = newMessageId();
      const id = await insertRow(svc.sql, "documents", messageId);
      const response = await send(eventData("delivered", messageId), { timestamp: String(timestamp) });
      assert.equal(response.status, expected, `timestamp ${timestamp - now} s from now`);
      assert.equal((await rowState(svc.sql, "documents", id)).events.length, expected === 200 ? 1 : 0);
    }
  });

  await t.step("a numeric signature timestamp (as the docs' table says) is accepted", async () => {
    const messageId = newMessageId();
    await insertRow(svc.sql, "documents", messageId);
    const signature = signWebhook(svc.key);
    const body = JSON.stringify({
      signature: { ...signature, timestamp: Number(signature.timestamp) },
      "event-data": eventData("delivered", messageId),
    });
    assert.equal((await post(svc.url, body)).status, 200);
  });
});

Deno.test("parsing: 400 for a body that is not JSON, 406 for unusable event-data", async (t) => {
  await t.step("bodies that are not JSON get 400", async () => {
    for (const body of ["", "not json", "{", '{"signature": ', "\u0000"]) {
      assert.equal((await post(svc.url, body)).status, 400, JSON.stringify(body));
    }
    assert.equal((await post(svc.url, new Uint8Array([0xff, 0xfe, 0x7b, 0x7d]))).status, 400);
  });

  await t.step("unusable event-data under a valid signature: 406, nothing written", async () => {
    const messageId = newMessageId();
    const id = await insertRow(svc.sql, "documents", messageId);
    const good = eventData("delivered", messageId);
    const { event: _event, ...noEvent } = good;
    const { timestamp: _ts, ...noTimestamp } = good;
    const cases: Record<string, unknown> = {
      "missing": undefined,
      "null": null,
      "array": [good],
      "string": "delivered",
      "no event": noEvent,
      "numeric id": { ...good, id: 42 },
      "empty event": { ...good, event: "" },
      "no timestamp": noTimestamp,
      "timestamp not a number": { ...good, timestamp: "yesterday" },
      "negative timestamp": { ...good, timestamp: -5 },
      "huge timestamp": { ...good, timestamp: 1e300 },
      "message-id not a string": { ...good, message: { headers: { "message-id": 42 } } },
      "headers not an object": { ...good, message: { headers: "x" } },
      "failed without severity": { ...eventData("permanent", messageId), severity: undefined },
      "failed with unknown severity": { ...eventData("permanent", messageId), severity: "catastrophic" },
      "NUL in a string": { ...good, recipient: "a\u0000b@example.com" },
      "lone surrogate": { ...good, tags: ["\ud800"] },
      "nested too deep": { ...good, deep: JSON.parse("[".repeat(100) + "]".repeat(100)) },
    };
    for (const [name, data] of Object.entries(cases)) {
      const response = await send(data);
      assert.equal(response.status, 406, name);
      assert.equal(svc.logs.at(-1)!.outcome, "unacceptable", name);
    }
    assert.equal((await rowState(svc.sql, "documents", id)).events.length, 0);
    assert.equal((await rowState(svc.sql, "documents", id)).status, "SENT");
  });
});

Deno.test("request limits and routing: 413, 405, 404", async (t) => {
  await t.step("a body over 1 MiB gets 413, with Content-Length and chunked", async () => {
    const big = JSON.stringify({ padding: "x".repeat(1024 * 1024) });
    assert.equal((await post(svc.url, big)).status, 413);
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        // Practically endless (640 MiB): the server must answer without reading it all.
        if (sent >= 10_000) return controller.close();
        sent++;
        controller.enqueue(chunk);
      },
    });
    const response = await fetch(`${svc.url}/v1/mailgun/webhook`, { method: "POST", body: stream });
    assert.equal(response.status, 413);
    await response.body?.cancel();
    // 16 chunks make the limit; allow for what loopback and the client buffer.
    assert.ok(sent < 500, `the client sent ${sent} chunks of 64 KiB before the 413`);
  });

  await t.step("other methods get 405, other paths 404", async () => {
    for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
      const response = await fetch(`${svc.url}/v1/mailgun/webhook`, { method });
      await response.body?.cancel();
      assert.equal(response.status, 405, method);
      assert.equal(response.headers.get("allow"), "POST");
    }
    for (const path of ["/", "/v1/mailgun", "/v1/mailgun/webhook/extra", "/v2/mailgun/webhook"]) {
      const response = await fetch(`${svc.url}${path}`, { method: "POST", body: "{}" });
      await response.body?.cancel();
      assert.equal(response.status, 404, path);
    }
  });
});

Deno.test("health and logs", async (t) => {
  await t.step("GET /healthz answers 200 when the database answers", async () => {
    const response = await fetch(`${svc.url}/healthz`);
    assert.equal(response.status, 200);
    // The test database has no API tables: the migration's stand-ins, which /healthz names.
    assert.deepEqual(await response.json(), { ok: true, database: "up", host_tables: "stand-in" });
  });

  await t.step(
    "log lines: one per webhook, with outcome, event id, type, rows, duration; never the key or a recipient",
    async () => {
      const messageId = newMessageId();
      await insertRow(svc.sql, "documents", messageId);
      const data = eventData("delivered", messageId, { recipient: "private.person@example.org" });
      const lines = svc.logs.length;
      await send(data);
      assert.equal(svc.logs.length, lines + 1);
      const line = svc.logs.at(-1)!;
      assert.equal(line.msg, "webhook");
      assert.equal(line.outcome, "applied");
      assert.equal(line.event_id, data.id);
      assert.equal(line.event, "delivered");
      assert.equal(line.rows, 1);
      assert.equal(line.signing_key_index, 0);
      assert.equal(typeof line.duration_ms, "number");
      const all = svc.rawLogs.join("\n");
      assert.ok(!all.includes(svc.key), "a log line holds the signing key");
      assert.ok(
        !all.includes("@example.com") && !all.includes("@sample.mailgun.com") && !all.includes("private.person"),
      );
    },
  );
});
