/**
 * Two instances, one database, as on Deno Deploy: every event is delivered to
 * both at the same moment, under the same signature and re-signed. Each must
 * be applied exactly once, and neither instance may answer anything but 200
 * (a 5xx would make Mailgun retry for nothing; a 401 would mean one instance
 * took the other's token for a replay).
 *
 * Needs the real PostgreSQL: DATABASE_URL=postgres://root@127.0.0.1:5432/test deno task faults
 */
import assert from "node:assert/strict";
import { signWebhook } from "../../src/mailgun/sign_webhook.ts";
import { createFaultDatabase } from "./fault_database.ts";
import { checkLogs, type ServerProcess, startServerProcess } from "../helpers/subprocess.ts";
import { checkEndState, insertRows, type PlannedEvent, planTraffic, seededRandom, shuffle } from "./traffic_plan.ts";

/** Events delivered at once; each goes out four times, so up to four times as many requests are in flight. */
const EVENTS_IN_FLIGHT = 8;

interface Answer {
  instance: "a" | "b";
  status: number;
  duplicate: boolean;
}

async function post(url: string, body: string, instance: "a" | "b"): Promise<Answer> {
  const response = await fetch(`${url}/v1/mailgun/webhook`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  const text = await response.text();
  return { instance, status: response.status, duplicate: text.includes('"duplicate":true') };
}

/** Runs `work` over `items`, `limit` at a time. */
async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await work(items[next++]);
  }));
}

Deno.test("two instances on one database: the same events to both at once are applied exactly once, never a 5xx", async () => {
  const seed = Number(Deno.env.get("FAULT_SEED") ?? Math.floor(Math.random() * 2 ** 31));
  const messages = Number(Deno.env.get("TWO_INSTANCE_MESSAGES") ?? 1500);
  console.log(`two-instances: seed ${seed} (replay with FAULT_SEED=${seed}), ${messages} messages`);
  const random = seededRandom(seed);
  const signingKey = `fault-key-${crypto.randomUUID()}`;
  const db = await createFaultDatabase();
  const servers: ServerProcess[] = [];
  try {
    const plan = planTraffic({ messages, random });
    await insertRows(db.sql, plan);
    const [a, b] = await Promise.all([
      startServerProcess({ databaseUrl: db.url, signingKey, name: "instance a" }),
      startServerProcess({ databaseUrl: db.url, signingKey, name: "instance b" }),
    ]);
    servers.push(a, b);

    const answers = new Map<string, Answer[]>();
    const started = performance.now();
    const deliverBoth = async (event: PlannedEvent) => {
      const original = signWebhook(signingKey);
      const resigned = signWebhook(signingKey);
      const same = JSON.stringify({ signature: original, "event-data": event.data });
      const other = JSON.stringify({ signature: resigned, "event-data": event.data });
      const got = await Promise.all([
        post(a.url, same, "a"),
        post(b.url, same, "b"),
        post(a.url, other, "a"),
        post(b.url, other, "b"),
      ]);
      answers.set(event.id, got);
    };
    await pool(plan.events, EVENTS_IN_FLIGHT, deliverBoth);
    // Mailgun's late retries, in another order: everything again, to whichever instance.
    const late: Answer[] = [];
    await pool(shuffle([...plan.events], random), EVENTS_IN_FLIGHT * 2, async (event) => {
      const target = random() < 0.5 ? a : b;
      const body = JSON.stringify({ signature: signWebhook(signingKey), "event-data": event.data });
      late.push(await post(target.url, body, target === a ? "a" : "b"));
    });
    const durationMs = Math.round(performance.now() - started);

    await Promise.all(servers.map((server) => server.stop()));
    const logs = servers.map((server) => checkLogs(server, signingKey));
    const applied = logs.map((lines) => lines.filter((line) => line.outcome === "applied").length);
    const all = [...[...answers.values()].flat(), ...late];
    const statuses: Record<string, number> = {};
    for (const answer of all) {
      statuses[`${answer.instance}:${answer.status}`] = (statuses[`${answer.instance}:${answer.status}`] ?? 0) + 1;
    }
    const tracked = plan.events.filter((event) => event.type !== null);
    const notExactlyOnce = tracked.filter((event) => answers.get(event.id)!.filter((x) => !x.duplicate).length !== 1);
    const endState = await checkEndState(db.sql, plan);

    const figures = {
      seed,
      events: plan.events.length,
      trackedEvents: tracked.length,
      deliveries: all.length,
      statuses,
      appliedByInstance: { a: applied[0], b: applied[1] },
      lateDuplicates: late.filter((answer) => answer.duplicate).length,
      durationMs,
      endState: { ...endState, problems: endState.problems.length },
    };
    console.log(`two-instances figures: ${JSON.stringify(figures, null, 1)}`);
    for (const text of endState.problems) console.log(`  problem: ${text}`);

    assert.deepEqual(all.filter((answer) => answer.status !== 200), [], "every delivery must be answered 200");
    assert.equal(notExactlyOnce.length, 0, "a tracked event was answered 'applied' other than once");
    assert.equal(applied[0] + applied[1], tracked.length, "applied log lines across both instances");
    assert.ok(applied[0] > 0 && applied[1] > 0, "both instances must have applied events");
    assert.equal(late.filter((answer) => !answer.duplicate).length, plan.events.length - tracked.length);
    assert.equal(endState.missing + endState.duplicated + endState.unexpected + endState.wrongStatus, 0);
    assert.equal(endState.rowsCorrect, endState.rows);
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    await db.drop();
  }
});
