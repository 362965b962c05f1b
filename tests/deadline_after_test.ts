import assert from "node:assert/strict";
import { deadlineAfter, heldDeadlines } from "../src/timing/deadline_after.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

Deno.test("deadlines of one length fire in order, each after its own delay; cancelled ones never fire", async () => {
  const delayMs = 40;
  const fired: string[] = [];
  const started = performance.now();
  const firedAt: Record<string, number> = {};
  const on = (name: string) => () => {
    fired.push(name);
    firedAt[name] = performance.now() - started;
  };
  deadlineAfter(delayMs, on("a"));
  const b = deadlineAfter(delayMs, on("b"));
  await sleep(15);
  deadlineAfter(delayMs, on("c"));
  b.cancel();
  await sleep(80);
  assert.deepEqual(fired, ["a", "c"]);
  assert.ok(firedAt.a >= delayMs - 1, `a fired after ${firedAt.a} ms`);
  assert.ok(firedAt.c >= delayMs + 14, `c fired after ${firedAt.c} ms, its own delay after it was set`);
  assert.equal(heldDeadlines(delayMs), 0);
});

Deno.test("cancelling every deadline leaves nothing held", () => {
  const delayMs = 10_000;
  const deadlines = Array.from({ length: 5_000 }, () => deadlineAfter(delayMs, () => assert.fail("cancelled")));
  // Out of order: the ones behind a pending deadline stay held until it goes.
  for (let i = 1; i < deadlines.length; i++) deadlines[i].cancel();
  assert.equal(heldDeadlines(delayMs), 5_000);
  deadlines[0].cancel();
  assert.equal(heldDeadlines(delayMs), 0);
});

Deno.test("the timer left armed after every deadline is cancelled keeps no process alive", async () => {
  const script = `
    import { deadlineAfter } from ${JSON.stringify(new URL("../src/timing/deadline_after.ts", import.meta.url).href)};
    deadlineAfter(60_000, () => console.log("fired")).cancel();
  `;
  const started = performance.now();
  const child = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(child.code, 0, new TextDecoder().decode(child.stderr));
  assert.equal(new TextDecoder().decode(child.stdout), "");
  assert.ok(performance.now() - started < 30_000, "the process waited for the cancelled deadline's timer");
});

Deno.test("cancelling after a deadline fired does nothing; lengths are independent", async () => {
  let shortFired = 0;
  let longFired = 0;
  const short = deadlineAfter(5, () => shortFired++);
  const long = deadlineAfter(60_000, () => longFired++);
  await sleep(30);
  short.cancel();
  assert.equal(shortFired, 1);
  assert.equal(longFired, 0);
  long.cancel();
  assert.equal(heldDeadlines(60_000), 0);
});

Deno.test("a deadline set from inside an expiring one is served by the same queue", async () => {
  const fired: number[] = [];
  deadlineAfter(10, () => {
    fired.push(1);
    deadlineAfter(10, () => fired.push(2));
  });
  await sleep(60);
  assert.deepEqual(fired, [1, 2]);
  assert.equal(heldDeadlines(10), 0);
});
