import { parseArgs } from "node:util";
import { z } from "zod";
import { loadDatabaseSettings } from "../config/database_settings.ts";
import { loadFollowSettings } from "../config/follow_settings.ts";
import { ConfigError, readSetting } from "../config/read_env.ts";
import { openToolDatabase } from "../db/open_tool_database.ts";
import { readCursorFile, writeCursorFile } from "../feed/cursor_file.ts";
import { type FeedChange, isFeedCursor, startFeedConsumer } from "../feed/feed_consumer.ts";
import { changeJson, forwardChange, ForwardFailedError } from "../feed/forward_change.ts";

/** Where the follower keeps its cursor unless told otherwise (the task may write only under .follow/). */
const DEFAULT_CURSOR_FILE = ".follow/cursor";

const USAGE = `Usage: deno task follow [--from <cursor>|beginning|now] [--cursor-file <path>] [--forward <url>]
                       [--json] [--once] [--batch 100] [--poll-ms 5000] [--max-attempts 8]

Prints each change of the audit trail's feed as it commits (docs/feed.md), like stripe listen: one line
per trail entry (row, type, the status it climbs to, its cursor). Starts from --from (a cursor, beginning
or now), else after the cursor kept in --cursor-file (default ${DEFAULT_CURSOR_FILE}), else now; writes each
change's cursor there once it is handled, so that a restart resumes after it. --json prints each change as
one JSON line.

--forward <url> POSTs each change to <url> as a Standard Webhooks request: webhook-id is the change's
cursor (a re-delivery carries the same id), webhook-signature is v1,<base64 HMAC-SHA256> under FOLLOW_SECRET
(whsec_ and base64). A failure (no answer within 10 s, or not 2xx) is retried with backoff (0.5 s doubling
to 30 s) up to --max-attempts times; then it stops with exit code 1, its cursor before that change.

--once stops once caught up. Ctrl-C stops after the change in hand (a delivery being retried is given up: that
change comes first on the next run). On PostgreSQL it wakes on each commit
(LISTEN) and reads at least every --poll-ms; on the embedded database it reads every --poll-ms (default
1000 there). Gives up when the database does not answer the connect within 10 s.`;

const wholeNumber = (min: number, max: number) =>
  z.string().regex(/^\d+$/, { error: `must be a whole number from ${min} to ${max}.` }).transform(Number)
    .pipe(
      z.number().min(min, { error: `must be from ${min} to ${max}.` }).max(max, {
        error: `must be from ${min} to ${max}.`,
      }),
    );

/** `deno task follow`: the trail's changes, printed or forwarded, as they commit. */
async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        from: { type: "string" },
        "cursor-file": { type: "string" },
        forward: { type: "string" },
        json: { type: "boolean" },
        once: { type: "boolean" },
        batch: { type: "string" },
        "poll-ms": { type: "string" },
        "max-attempts": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const flags = parsed.values;
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const from = flags.from;
  if (from !== undefined && from !== "beginning" && from !== "now" && !isFeedCursor(from)) {
    console.error(`--from must be a cursor (<txid>:<id>, as printed), beginning or now.\n\n${USAGE}`);
    return 2;
  }
  let settings, databaseSettings, batchSize, maxAttempts, pollMs: number | undefined, forwardUrl: URL | undefined;
  try {
    settings = loadFollowSettings();
    databaseSettings = loadDatabaseSettings();
    batchSize = readSetting("--batch", wholeNumber(1, 10_000).default(100), flags.batch);
    maxAttempts = readSetting("--max-attempts", wholeNumber(1, 100).default(8), flags["max-attempts"]);
    pollMs = readSetting("--poll-ms", wholeNumber(10, 600_000).optional(), flags["poll-ms"]);
    if (flags.forward !== undefined) {
      forwardUrl = readSetting(
        "--forward",
        z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL." }).transform((raw) => new URL(raw)),
        flags.forward,
      );
      if (settings.secret === undefined) {
        throw new ConfigError(
          "FOLLOW_SECRET is required with --forward (whsec_ and base64; the receiver verifies it).",
        );
      }
    }
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`Configuration error: ${error.message}`);
    return 1;
  }
  const cursorFile = flags["cursor-file"] ?? DEFAULT_CURSOR_FILE;
  let current: string | undefined;
  let start: string = "now";
  try {
    if (from === undefined) current = await readCursorFile(cursorFile);
    else start = from;
    if (current !== undefined && !isFeedCursor(current)) {
      console.error(`${cursorFile} holds no cursor: remove it, or start with --from.`);
      return 1;
    }
  } catch (error) {
    console.error(`Could not read ${cursorFile}: ${(error as Error).message}`);
    return 1;
  }

  let db;
  try {
    db = await openToolDatabase(databaseSettings);
  } catch (error) {
    console.error(`Could not open the database: ${(error as Error).message}`);
    return 1;
  }
  const embedded = databaseSettings.databaseUrl === undefined;
  const stopping = new AbortController();
  let failure: unknown;
  const secret = settings.secret;
  const saveCursor = async (cursor: string) => {
    if (cursor === current) return;
    current = cursor;
    await writeCursorFile(cursorFile, cursor);
  };
  const handle = async (change: FeedChange) => {
    if (forwardUrl !== undefined && secret !== undefined) {
      const delivered = await forwardChange(change, {
        url: forwardUrl.href,
        secret,
        maxAttempts,
        baseDelayMs: 500,
        maxDelayMs: 30_000,
        timeoutMs: 10_000,
        signal: stopping.signal,
        onRetry: (reason, delayMs, attempt) =>
          console.error(`${change.cursor}: ${reason} (attempt ${attempt}); retrying in ${delayMs} ms`),
      });
      print(change, flags.json === true, `-> ${delivered.status}`);
    } else {
      print(change, flags.json === true);
    }
    await saveCursor(change.cursor);
  };
  const consumer = startFeedConsumer({
    sql: db.sql,
    start,
    batchSize,
    listen: !embedded,
    pollIntervalMs: pollMs ?? (embedded ? 1_000 : 5_000),
    cursor: {
      load: async (tx) => {
        // The client-side bound of the tool's pool does not reach into a transaction: the server's does.
        await tx`select set_config('statement_timeout', '60000', true)`;
        return current;
      },
      save: (_tx, cursor) => saveCursor(cursor),
    },
    async onChange(change) {
      try {
        await handle(change);
      } catch (error) {
        // Nothing more is handed over: a restart starts again at this change. Stopped by a signal, it is no failure.
        if (!stopping.signal.aborted) failure ??= error;
        void consumer.stop();
        throw error;
      }
    },
    onError(error) {
      if (error !== failure && !stopping.signal.aborted) {
        console.error(`Feed read failed (retrying): ${(error as Error)?.message ?? error}`);
      }
    },
    onCaughtUp() {
      if (flags.once) void consumer.stop();
    },
  });
  console.error(`Following the trail's feed in ${db.description}${forwardUrl ? `, forwarding to ${forwardUrl}` : ""}.`);
  const stop = () => {
    stopping.abort();
    void consumer.stop();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  try {
    await consumer.done;
    await consumer.stop();
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    await db.close();
  }
  if (current !== undefined) {
    console.error(`Stopped after ${current} (kept in ${cursorFile}; resume with --from ${current}).`);
  }
  if (failure !== undefined) {
    console.error(
      failure instanceof ForwardFailedError ? failure.message : `Stopped: ${(failure as Error)?.message ?? failure}`,
    );
    return 1;
  }
  return 0;
}

/** One change on stdout: a line for people, or JSON. */
function print(change: FeedChange, json: boolean, delivery?: string): void {
  if (json) {
    console.log(JSON.stringify({ ...changeJson(change), ...(delivery ? { delivered: delivery } : {}) }));
    return;
  }
  const moves = change.status === null ? "status unchanged" : `-> ${change.status} (rank ${change.rank})`;
  console.log(
    `${change.receivedAt.toISOString()}  ${change.rowKind} ${change.rowId}  ${change.type}  ${moves}  ` +
      `[${change.cursor}]${delivery ? `  ${delivery}` : ""}`,
  );
}

if (import.meta.main) {
  // Exits at once: a socket still connecting to a silent database must not keep the process alive.
  Deno.exit(await main(Deno.args));
}
