/**
 * BATCH_GATHER_MS: after a batch of N webhooks, the next batch waits (at most
 * gatherMs) until N have gathered, so that fewer, larger statements are sent
 * under load. Webhooks written by one statement share its transaction: the
 * tokens' xmin tells the statements apart.
 */
import assert from "node:assert/strict";
import { createBatchWriter } from "../src/batch_writer/batch_writer.ts";
import type { BatchRow } from "../src/db/write_batch_query.ts";
import { sha256Hex } from "../src/encoding/sha256_hex.ts";
import { newToken } from "../src/mailgun/sign_webhook.ts";
import { startTestService } from "./helpers/test_service.ts";

function tokenRow(): BatchRow {
  const token = newToken();
  return { kind: "token", token, signedAt: Math.floor(Date.now() / 1000), binding: { bodyHash: sha256Hex(token) } };
}

Deno.test("a batch waits for as many webhooks as the last one held, within BATCH_GATHER_MS", async () => {
  const svc = await startTestService();
  try {
    const writer = createBatchWriter(svc.sql, {
      maxBatch: 16,
      maxInFlight: 1,
      // Far longer than the test's own 20 ms pause: the second half arrives within it on any machine.
      gatherMs: 2_000,
      queryTimeoutMs: 5_000,
      lockTimeoutMs: 1_000,
      deadlineMs: 6_000,
      maxQueued: 100,
    });
    const statementsOf = async (rows: BatchRow[]) => {
      const [{ n }] = await svc.sql<{ n: number }[]>`
        select count(distinct xmin::text)::int as n from mailgun_webhook.tokens where token = any(${
        rows.map((row) => row.token)
      })
      `;
      return n;
    };

    // Nothing sent before: the first batch goes at once, whatever its size.
    const first = Array.from({ length: 4 }, tokenRow);
    await Promise.all(first.map((row) => writer.write(row)));
    assert.equal(await statementsOf(first), 1);

    // Two now, two 20 ms later: the batch waits for the four the last one held, and they share one statement.
    const second = Array.from({ length: 4 }, tokenRow);
    const early = second.slice(0, 2).map((row) => writer.write(row));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const late = second.slice(2).map((row) => writer.write(row));
    const results = await Promise.all([...early, ...late]);
    assert.ok(results.every((result) => result.accepted));
    assert.equal(await statementsOf(second), 1);

    // A lone webhook after them is still written (once gatherMs has passed), and the next lone one goes at once.
    const lone = [tokenRow(), tokenRow()];
    assert.ok((await writer.write(lone[0])).accepted);
    assert.ok((await writer.write(lone[1])).accepted);
    assert.equal(await statementsOf(lone), 2);
    await writer.drain();
  } finally {
    await svc.close();
  }
});

Deno.test("without BATCH_GATHER_MS a batch is sent at once: two webhooks written one after the other are two statements", async () => {
  const svc = await startTestService();
  try {
    const writer = createBatchWriter(svc.sql, {
      maxBatch: 16,
      maxInFlight: 1,
      queryTimeoutMs: 5_000,
      lockTimeoutMs: 1_000,
      deadlineMs: 6_000,
      maxQueued: 100,
    });
    const rows = Array.from({ length: 4 }, tokenRow);
    await Promise.all(rows.slice(0, 2).map((row) => writer.write(row)));
    await Promise.all(rows.slice(2).map((row) => writer.write(row)));
    const [{ n }] = await svc.sql<{ n: number }[]>`
      select count(distinct xmin::text)::int as n from mailgun_webhook.tokens where token = any(${
      rows.map((row) => row.token)
    })
    `;
    assert.equal(n, 2);
    await writer.drain();
  } finally {
    await svc.close();
  }
});
