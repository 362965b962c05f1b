/** Retries of requests to Mailgun (src/reconcile/fetch_with_backoff.ts). */
import assert from "node:assert/strict";
import { fetchWithBackoff, retryAfterMs } from "../src/reconcile/fetch_with_backoff.ts";

Deno.test("Retry-After: seconds or an HTTP date", () => {
  assert.equal(retryAfterMs("3"), 3000);
  assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4_000), 6_000);
  assert.equal(retryAfterMs(null), undefined);
  assert.equal(retryAfterMs("soon"), undefined);
});

Deno.test("fetchWithBackoff retries 429 and 5xx, honours Retry-After up to its bound, and returns a 4xx at once", async () => {
  const statuses = [429, 500, 200, 401];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    const status = statuses.shift()!;
    return new Response("{}", { status, headers: status === 429 ? { "retry-after": "30" } : {} });
  });
  const url = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}/`;
  try {
    const waits: [string, number][] = [];
    let attempts = 0;
    const options = {
      maxAttempts: 5,
      baseDelayMs: 1,
      maxDelayMs: 20,
      timeoutMs: 2_000,
      onRetry: (reason: string, delayMs: number) => void waits.push([reason, delayMs]),
      onAttempt: () => void attempts++,
    };
    const ok = await fetchWithBackoff(url, {}, options);
    await ok.body?.cancel();
    assert.equal(ok.status, 200);
    // Retry-After asked for 30 s: the bound (maxDelayMs) wins.
    assert.deepEqual(waits.map(([reason]) => reason), ["429", "500"]);
    assert.equal(waits[0][1], 20);
    assert.equal(attempts, 3);
    const refused = await fetchWithBackoff(url, {}, options);
    await refused.body?.cancel();
    assert.equal(refused.status, 401);
    assert.equal(attempts, 4, "a 401 is not retried");
  } finally {
    await server.shutdown();
  }
});
