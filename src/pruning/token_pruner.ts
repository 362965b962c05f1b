import type { Sql } from "postgres";
import { SIGNATURE_MAX_FUTURE_SECONDS_LIMIT } from "../config/service_config.ts";
import { pruneTokens } from "../db/prune_tokens_query.ts";
import { log } from "../reporting/log.ts";

/** How often the service prunes consumed tokens. */
const PRUNE_INTERVAL_MS = 10 * 60 * 1000;
/** Kept past the signature window, for clocks that disagree. */
export const PRUNE_MARGIN_SECONDS = 60 * 60;

/**
 * What pruning leaves alone: back, as far as this instance's `window` reaches
 * (age and future skew) with the margin; ahead, as far as ANY instance's may
 * (the widest future skew the configuration allows) with the margin. Back,
 * other instances with wider windows are protected by the prune horizon
 * (migration 0012): a signature older than what was pruned is refused, not
 * re-opened. Ahead there is no horizon, so no instance may prune there.
 */
export function pruneReach(window: { maxAgeSeconds: number; maxFutureSeconds: number }): {
  olderThanSeconds: number;
  aheadSeconds: number;
} {
  return {
    olderThanSeconds: window.maxAgeSeconds + window.maxFutureSeconds + PRUNE_MARGIN_SECONDS,
    aheadSeconds: SIGNATURE_MAX_FUTURE_SECONDS_LIMIT + PRUNE_MARGIN_SECONDS,
  };
}

/**
 * Keeps the token table bounded without a cron job: every few minutes,
 * empty the day partitions that the signature window cannot reach (see
 * {@link pruneReach}), after moving the prune horizon past them, so pruning
 * never re-opens a replay, whatever other instances' windows are. A token
 * goes within a day of leaving the window. The first pruning comes
 * `firstDelayMs` after start (at most one interval). Returns a function that
 * stops it.
 */
export function startTokenPruner(
  sql: Sql,
  window: { maxAgeSeconds: number; maxFutureSeconds: number },
  timing: { firstDelayMs: number; intervalMs?: number },
): () => void {
  const intervalMs = timing.intervalMs ?? PRUNE_INTERVAL_MS;
  const { olderThanSeconds, aheadSeconds } = pruneReach(window);
  let running = false;
  const prune = async () => {
    if (running) return;
    running = true;
    const started = performance.now();
    try {
      const emptied = await pruneTokens(sql, olderThanSeconds, aheadSeconds);
      if (emptied > 0) {
        log("info", "pruned consumed tokens", { partitions: emptied, ms: Math.round(performance.now() - started) });
      }
    } catch (error) {
      log("warn", "token pruning failed; will retry", { error_code: (error as { code?: string }).code });
    } finally {
      running = false;
    }
  };
  // Unreferenced: pruning never keeps the process alive.
  const first = setTimeout(prune, Math.min(intervalMs, timing.firstDelayMs));
  const every = setInterval(prune, intervalMs);
  Deno.unrefTimer(first);
  Deno.unrefTimer(every);
  return () => {
    clearTimeout(first);
    clearInterval(every);
  };
}
