import assert from "node:assert/strict";
import { BodyTooLargeError, SlowBodyError, UnreadableBodyError } from "../src/http/body_errors.ts";
import { readBody } from "../src/http/read_body.ts";

function streamOf(chunks: Uint8Array[], { endless = false, delayMs = 0 } = {}) {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (i < chunks.length) controller.enqueue(chunks[i++]);
      else if (endless) controller.enqueue(chunks[0]);
      else controller.close();
    },
  });
}

const kib = (n: number) => new Uint8Array(n * 1024).fill(120);

Deno.test("reads a body in chunks", async () => {
  const request = new Request("http://x/", { method: "POST", body: streamOf([kib(1), kib(2)]) });
  assert.equal((await readBody(request, 4096, 1000)).byteLength, 3072);
});

Deno.test("a declared Content-Length over the limit is refused before reading", async () => {
  let pulled = 0;
  const body = new ReadableStream({
    pull(controller) {
      pulled++;
      controller.enqueue(kib(1));
    },
  });
  const request = new Request("http://x/", { method: "POST", body, headers: { "content-length": "5000" } });
  await assert.rejects(readBody(request, 4096, 1000), BodyTooLargeError);
  assert.equal(pulled <= 1, true);
});

Deno.test("an endless body is cut off at the limit", async () => {
  const request = new Request("http://x/", { method: "POST", body: streamOf([kib(1)], { endless: true }) });
  await assert.rejects(readBody(request, 4096, 5000), BodyTooLargeError);
});

Deno.test("a trickling body is cut off by the timeout", async () => {
  const request = new Request("http://x/", {
    method: "POST",
    body: streamOf([kib(1)], { endless: true, delayMs: 50 }),
  });
  const started = Date.now();
  await assert.rejects(readBody(request, 1024 * 1024, 200), SlowBodyError);
  assert.ok(Date.now() - started < 2000);
});

Deno.test("a trickling body with a declared length is cut off by the timeout too", async () => {
  const request = new Request("http://x/", {
    method: "POST",
    body: streamOf([kib(1)], { endless: true, delayMs: 50 }),
    headers: { "content-length": String(1024 * 1024) },
  });
  const started = Date.now();
  await assert.rejects(readBody(request, 1024 * 1024, 200), SlowBodyError);
  assert.ok(Date.now() - started < 2000);
});

Deno.test("a body with a declared length is read whole", async () => {
  const request = new Request("http://x/", {
    method: "POST",
    body: streamOf([kib(1), kib(1)]),
    headers: { "content-length": "2048" },
  });
  assert.equal((await readBody(request, 4096, 1000)).byteLength, 2048);
});

Deno.test("a body that errors is a bad request", async () => {
  const body = new ReadableStream({
    pull(controller) {
      controller.error(new Error("connection reset"));
    },
  });
  await assert.rejects(readBody(new Request("http://x/", { method: "POST", body }), 4096, 1000), UnreadableBodyError);
});

Deno.test("no body is an empty body", async () => {
  assert.equal((await readBody(new Request("http://x/", { method: "POST" }), 4096, 1000)).byteLength, 0);
});
