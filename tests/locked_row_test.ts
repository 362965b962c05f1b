/**
 * A document row held `for update` by another session (the API editing an
 * invoice) must not stall webhooks for other rows: the batch's lock wait ends
 * at DB_LOCK_TIMEOUT_MS, the others are written without the locked row, and
 * its webhook gets 503 (retried by Mailgun) once its own lock waits time out.
 * Real PostgreSQL only: it needs a second session holding a lock.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { eventData, post, signedBody } from "./helpers/mailgun.ts";
import { insertRow, newMessageId, rowState, startTestService } from "./helpers/test_service.ts";

const ignore = !Deno.env.get("DATABASE_URL");

async function timedPost(url: string, body: string) {
  const started = performance.now();
  const response = await post(url, body);
  return { ...response, ms: performance.now() - started };
}

async function lockedRowScenario(env: Record<string, string>) {
  // One statement in flight (the default): webhooks that arrive together share a batch.
  const svc = await startTestService({ BATCH_IN_FLIGHT: "1", ...env });
  const holder = postgres(svc.db.url, { max: 1, onnotice: () => {} });
  try {
    const lockedMessage = newMessageId();
    const lockedId = await insertRow(svc.sql, "documents", lockedMessage);
    const others = await Promise.all(Array.from({ length: 6 }, async () => {
      const messageId = newMessageId();
      return { messageId, id: await insertRow(svc.sql, "documents", messageId) };
    }));
    const bodies = others.map(({ messageId }) => signedBody(svc.key, eventData("delivered", messageId)).body);
    const lockedBody = signedBody(svc.key, eventData("delivered", lockedMessage)).body;

    const { promise: locked, resolve: onLocked } = Promise.withResolvers<void>();
    const { promise: release, resolve: releaseLock } = Promise.withResolvers<void>();
    const transaction = holder.begin(async (tx) => {
      await tx`select id from documents where id = ${lockedId} for update`;
      onLocked();
      await release;
    });
    await locked;
    let answers;
    try {
      // The locked row's webhook amid the others, so that it shares their batch.
      answers = await Promise.all([
        ...bodies.slice(0, 3).map((body) => timedPost(svc.url, body)),
        timedPost(svc.url, lockedBody),
        ...bodies.slice(3).map((body) => timedPost(svc.url, body)),
      ]);
    } finally {
      releaseLock();
      await transaction;
    }
    const lockedAnswer = answers.splice(3, 1)[0];
    // Every other webhook was written while the lock was still held.
    for (const answer of answers) assert.equal(answer.status, 200);
    for (const { id } of others) assert.equal((await rowState(svc.sql, "documents", id)).status, "DELIVERED");
    assert.equal(lockedAnswer.status, 503);
    assert.equal((await rowState(svc.sql, "documents", lockedId)).status, "SENT");
    // Well within Mailgun's ~10 s (and the 6 s webhook deadline): 2 lock waits of 1 s, plus the statements.
    assert.ok(lockedAnswer.ms < 5_000, `the locked row's webhook took ${lockedAnswer.ms} ms`);
    const slowest = Math.max(...answers.map((answer) => answer.ms));
    assert.ok(slowest < 5_000, `the others took up to ${slowest} ms`);
    console.log(
      `lock wait: others ${answers.map((a) => Math.round(a.ms)).join(", ")} ms; locked row ${
        Math.round(lockedAnswer.ms)
      } ms`,
    );
    // The 503 says why, in the database's own words.
    const line = svc.logs.find((entry) => entry.msg === "webhook" && entry.status === 503)!;
    assert.equal(line.outcome, "unavailable");
    assert.equal(line.error_code, "55P03");
    assert.match(String(line.error_message), /lock timeout/);

    // Once the lock is gone, Mailgun's retry goes through.
    assert.equal((await post(svc.url, lockedBody)).status, 200);
    assert.equal((await rowState(svc.sql, "documents", lockedId)).status, "DELIVERED");
  } finally {
    await holder.end();
    await svc.close();
  }
}

Deno.test({
  name: "a row held for update: the others of its batch are answered 200 at once, its webhook 503 with 55P03",
  ignore,
  fn: () => lockedRowScenario({}),
});

Deno.test({
  name: "the same with DB_PREPARE=false: lock_timeout holds without startup parameters",
  ignore,
  fn: () => lockedRowScenario({ DB_PREPARE: "false" }),
});
