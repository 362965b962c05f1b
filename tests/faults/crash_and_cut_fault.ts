/**
 * Fault suite: Mailgun-like traffic (thousands of events, shuffled, 16 in
 * flight, retried with the original or a fresh signature) while the server
 * is SIGKILLed and restarted and every database connection is cut. At the
 * end, row by row: every event in the trail exactly once, every status the
 * order-independent result, nothing given up, nothing refused with 406.
 *
 * Needs the real PostgreSQL: DATABASE_URL=postgres://root@127.0.0.1:5432/test deno task faults
 * Knobs: FAULT_SEED (replay a run), FAULT_MESSAGES (default 4000 messages, about 3 events each).
 */
import assert from "node:assert/strict";
import { createFaultDatabase } from "./fault_database.ts";
import { runMailgunSender, type SenderReport, summarise } from "./mailgun_sender.ts";
import { checkLogs, type ServerProcess, startServerProcess } from "../helpers/subprocess.ts";
import { checkEndState, insertRows, planTraffic, seededRandom } from "./traffic_plan.ts";

/** A fault, and when it strikes: at that share of events settled, so that it always lands mid-run. */
type Fault = { at: number; kind: "kill" | "cut" | "outage" };

/**
 * Every 4 % of the run, a fault: six SIGKILLs with restarts, two outages, and
 * connection cuts in between. Each one leaves the service with cold
 * connections, where a race once lost events (answered 406 on a connection
 * still fetching the server's types), so cuts are many: they cost nothing.
 */
const SCHEDULE: Fault[] = Array.from({ length: 24 }, (_, i) => ({
  at: (i + 1) / 25,
  kind: i % 4 === 0 ? "kill" : i === 9 || i === 19 ? "outage" : "cut",
}));

/** How long the database stays away in the outage: long enough for many requests to meet it. */
const OUTAGE_MS = 1_500;

/** The sender normally needs well under a minute; past this something hangs. */
const DEADLINE_MS = Number(Deno.env.get("FAULT_DEADLINE_MS") ?? 150_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("exactly once under SIGKILLs and database cuts: Mailgun-like traffic, checked row by row", async () => {
  const seed = Number(Deno.env.get("FAULT_SEED") ?? Math.floor(Math.random() * 2 ** 31));
  const messages = Number(Deno.env.get("FAULT_MESSAGES") ?? 4000);
  console.log(`crash-and-cut: seed ${seed} (replay with FAULT_SEED=${seed}), ${messages} messages`);
  const random = seededRandom(seed);
  const signingKey = `fault-key-${crypto.randomUUID()}`;
  const db = await createFaultDatabase();
  let server: ServerProcess | undefined;
  try {
    const plan = planTraffic({ messages, random });
    await insertRows(db.sql, plan);
    server = await startServerProcess({ databaseUrl: db.url, signingKey, name: "server" });
    const running = server;

    const total = plan.events.length;
    let settled = 0;
    let senderDone = false;
    const faults = {
      kills: 0,
      cuts: 0,
      outages: 0,
      backendsEnded: 0,
      healthDuringOutage: [] as number[],
      downtimeMs: 0,
    };
    // A fault that goes wrong (a restart that fails) or a run past its deadline stops the sender at once.
    const abort = new AbortController();
    const deadline = setTimeout(() => abort.abort(new Error("deadline")), DEADLINE_MS);
    const controller = (async () => {
      for (const fault of SCHEDULE) {
        while (!senderDone && settled < fault.at * total) await sleep(5);
        if (senderDone) return;
        const started = performance.now();
        if (fault.kind === "kill") {
          await running.kill();
          faults.kills++;
          // Stay down a moment: requests in flight die and new ones are refused.
          await sleep(300);
          await running.restart();
        } else if (fault.kind === "cut") {
          const ended = await db.cutConnections();
          faults.cuts++;
          faults.backendsEnded += ended;
        } else {
          const ended = await db.refuseConnections();
          faults.cuts++;
          faults.outages++;
          faults.backendsEnded += ended;
          try {
            await sleep(OUTAGE_MS / 2);
            const health = await fetch(`${running.url}/healthz`);
            await health.body?.cancel();
            faults.healthDuringOutage.push(health.status);
            await sleep(OUTAGE_MS / 2);
          } finally {
            await db.allowConnections();
          }
        }
        faults.downtimeMs += Math.round(performance.now() - started);
      }
    })().catch((error) => {
      abort.abort(error);
      throw error;
    });
    let live: SenderReport | undefined;
    const watchdog = setInterval(() => {
      const partial = live ? summarise(live) : {};
      console.log(
        `  progress: ${settled}/${total} settled, faults ${JSON.stringify(faults)}, ${JSON.stringify(partial)}`,
      );
    }, 20_000);
    let report;
    try {
      report = await runMailgunSender({
        url: `${running.url}/v1/mailgun/webhook`,
        signingKey,
        events: plan.events,
        random,
        concurrency: 16,
        onSettled: (n) => settled = n,
        signal: abort.signal,
        onStart: (r) => live = r,
      });
    } finally {
      senderDone = true;
      clearTimeout(deadline);
      clearInterval(watchdog);
      await controller;
    }
    if (abort.signal.aborted) {
      console.log(`stopped at ${settled}/${total}: ${abort.signal.reason}; server pid ${running.pid}`);
      for (const line of running.stdout.slice(-15)) console.log(`  stdout: ${line}`);
      for (const line of running.stderr.slice(-15)) console.log(`  stderr: ${line}`);
    }
    await running.stop();
    const logs = checkLogs(running, signingKey);
    const endState = await checkEndState(db.sql, plan);
    const accepted = [...report.byEvent.values()].flatMap((delivery) => delivery.acceptedTokens);
    const [stored] = await db.sql`select count(*)::int as n from mailgun_webhook.tokens where token = any(${accepted})`;

    const figures = {
      seed,
      messages: plan.messages.length,
      rows: endState.rows,
      ...summarise(report),
      faults,
      serverStarts: running.starts,
      logLines: logs.length,
      acceptedTokens: accepted.length,
      acceptedTokensStored: stored.n,
      endState: { ...endState, problems: endState.problems.length },
    };
    console.log(`crash-and-cut figures: ${JSON.stringify(figures, null, 1)}`);
    assert.ok(!abort.signal.aborted, `the run was stopped: ${abort.signal.reason}`);
    // What the server said when it did not answer 200: the first thing to read when this test fails.
    const refusals: Record<string, number> = {};
    for (const line of logs.filter((line) => line.msg === "webhook" && line.status !== 200)) {
      const key = `${line.status} ${line.outcome}: ${line.reason ?? ""} ${line.error_code ?? ""}`.trim();
      refusals[key] = (refusals[key] ?? 0) + 1;
    }
    console.log(`crash-and-cut refusals logged by the server: ${JSON.stringify(refusals, null, 1)}`);
    for (const line of logs.filter((line) => line.status === 406).slice(0, 20)) {
      console.log(`  ${JSON.stringify(line)}`);
    }
    for (const text of endState.problems) console.log(`  problem: ${text}`);

    assert.ok(faults.kills >= 2, `only ${faults.kills} kills happened while the sender ran`);
    assert.ok(faults.cuts >= 1, "no connection cut happened while the sender ran");
    assert.ok(faults.backendsEnded >= 1, "the cuts found no connection to end");
    assert.ok(
      faults.healthDuringOutage.every((status) => status === 503),
      "/healthz must say 503 while the database is away",
    );
    assert.ok(report.retriesWithOriginalSignature > 0 && report.retriesWithFreshSignature > 0);
    assert.deepEqual(report.givenUp, [], "events given up");
    assert.deepEqual(report.refused, [], "events answered 406");
    const unexpectedStatuses = Object.keys(report.statuses).filter((status) => status !== "200" && status !== "503");
    assert.deepEqual(unexpectedStatuses, [], `answers other than 200 and 503: ${JSON.stringify(report.statuses)}`);
    assert.equal(stored.n, accepted.length, "a token answered 200 is not in the consumed-token table");
    assert.equal(endState.missing, 0, "events missing from the trail");
    assert.equal(endState.duplicated, 0, "events recorded twice");
    assert.equal(endState.unexpected, 0, "unexpected trail entries");
    assert.equal(endState.wrongStatus, 0, "rows with a wrong status");
    assert.equal(endState.rowsCorrect, endState.rows);
    assert.equal(endState.foundEntries, endState.expectedEntries);
  } finally {
    await server?.stop();
    await db.drop();
  }
});
