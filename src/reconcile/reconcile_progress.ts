import type { ReconcileProgress } from "./reconcile.ts";

/** One line of a run's progress, e.g. `page 12: 1200 events read, 40 of the 300 rows' events found, 38 applied, 2 already recorded`. */
export function formatProgress(progress: ReconcileProgress, dryRun: boolean): string {
  return `page ${progress.pages}: ${progress.eventsScanned} events read, ${progress.eventsFound} of them for the ` +
    `${progress.rowsChecked} rows checked, ${progress.applied} ${dryRun ? "to apply" : "applied"}, ` +
    `${progress.duplicates} already recorded`;
}

/**
 * Where progress goes: on a terminal, one line rewritten in place on stderr
 * (cleared before the summary); with `forced` and no terminal, one line per
 * page on stderr; else nowhere (a scheduled run's log keeps its summary only).
 */
export function progressWriter(
  stderr: { isTerminal(): boolean; writeSync(bytes: Uint8Array): number },
  forced: boolean,
  dryRun: boolean,
): { onPage?: (progress: ReconcileProgress) => void; done(): void } {
  const encoder = new TextEncoder();
  const write = (text: string) => {
    try {
      stderr.writeSync(encoder.encode(text));
    } catch {
      // Progress is a courtesy: a closed stderr must not fail the run.
    }
  };
  if (stderr.isTerminal()) {
    let shown = false;
    return {
      onPage(progress) {
        shown = true;
        // \r back to the line's start, \x1b[K clears the rest of the previous line.
        write(`\r${formatProgress(progress, dryRun)}\x1b[K`);
      },
      done: () => shown && write("\r\x1b[K"),
    };
  }
  if (forced) return { onPage: (progress) => write(`${formatProgress(progress, dryRun)}\n`), done() {} };
  return { done() {} };
}
