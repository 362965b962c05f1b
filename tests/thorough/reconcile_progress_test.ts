/** Reconcile's progress: a line rewritten in place on a terminal, a line per page when forced, else nothing. */
import assert from "node:assert/strict";
import type { ReconcileProgress } from "../../src/reconcile/reconcile.ts";
import { formatProgress, progressWriter } from "../../src/reconcile/reconcile_progress.ts";

const progress = (pages: number): ReconcileProgress => ({
  pages,
  rowsChecked: 300,
  eventsScanned: pages * 100,
  eventsFound: pages * 4,
  applied: pages * 3,
  duplicates: pages,
});

function fakeStderr(terminal: boolean) {
  let text = "";
  const decoder = new TextDecoder();
  return {
    isTerminal: () => terminal,
    writeSync(bytes: Uint8Array) {
      text += decoder.decode(bytes);
      return bytes.length;
    },
    get text() {
      return text;
    },
  };
}

Deno.test("the progress line says pages, events read, the rows' events found, applied and already recorded", () => {
  assert.equal(
    formatProgress(progress(12), false),
    "page 12: 1200 events read, 48 of them for the 300 rows checked, 36 applied, 12 already recorded",
  );
  assert.match(formatProgress(progress(1), true), /, 3 to apply, /);
});

Deno.test("on a terminal the line is rewritten in place and cleared before the summary", () => {
  const stderr = fakeStderr(true);
  const writer = progressWriter(stderr, false, false);
  writer.onPage!(progress(1));
  writer.onPage!(progress(2));
  writer.done();
  assert.equal(
    stderr.text,
    `\r${formatProgress(progress(1), false)}\x1b[K\r${formatProgress(progress(2), false)}\x1b[K\r\x1b[K`,
  );
});

Deno.test("not a terminal: a line per page with --progress, nothing without", () => {
  const forced = fakeStderr(false);
  const writer = progressWriter(forced, true, false);
  writer.onPage!(progress(1));
  writer.onPage!(progress(2));
  writer.done();
  assert.equal(forced.text, `${formatProgress(progress(1), false)}\n${formatProgress(progress(2), false)}\n`);
  const quiet = fakeStderr(false);
  const silent = progressWriter(quiet, false, false);
  assert.equal(silent.onPage, undefined);
  silent.done();
  assert.equal(quiet.text, "");
});
