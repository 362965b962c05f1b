/**
 * Log lines carry their severity to Deno Deploy and OpenTelemetry through the
 * console method that writes them: info on stdout (console.log), warn and
 * error on stderr (console.warn, console.error), each stream in order.
 */
import assert from "node:assert/strict";
import { run } from "../helpers/subprocess.ts";

const LOG_MODULE = new URL("../../src/reporting/log.ts", import.meta.url).href;

Deno.test("info lines go to stdout, warn and error lines to stderr, each stream in the order written", async () => {
  const script = `
    import { log } from ${JSON.stringify(LOG_MODULE)};
    const levels = ["info", "warn", "error", "info", "error", "warn", "info"];
    levels.forEach((level, i) => log(level, "line " + i, { n: i }));
  `;
  const result = await run(["eval", "--quiet", script]);
  assert.equal(result.code, 0, result.stderr);
  const parse = (text: string) => text.trim().split("\n").map((line) => JSON.parse(line));
  const stdout = parse(result.stdout);
  const stderr = parse(result.stderr);
  assert.deepEqual(stdout.map((line) => [line.level, line.n]), [["info", 0], ["info", 3], ["info", 6]]);
  assert.deepEqual(stderr.map((line) => [line.level, line.n]), [["warn", 1], ["error", 2], ["error", 4], ["warn", 5]]);
  // Each line carries its time: merged by it, the two streams give back the order written.
  const merged = [...stdout, ...stderr].sort((a, b) => a.time.localeCompare(b.time) || a.n - b.n);
  assert.deepEqual(merged.map((line) => line.n), [0, 1, 2, 3, 4, 5, 6]);
});
