/**
 * The change feed under attack (docs/feed.md): two service instances and
 * transactions held open so that they commit out of id order, while a
 * consumer (the API's loop, src/feed/feed_consumer.ts, cursor in the
 * database) and a follower (`deno task follow --forward`) are killed and
 * restarted at random; a follower away while thousands of entries are
 * written; a receiver that fails. PostgreSQL only for the concurrent parts:
 * PGlite has one session (no transaction stays open beside another) and
 * hands no notification to a listener; `follow` itself is also run there.
 */
import assert from "node:assert/strict";
import { taskCommand } from "../../bench/start_task_flags.ts";
import { readCursorFile } from "../../src/feed/cursor_file.ts";
import { signStandardWebhook } from "../../src/feed/standard_webhook.ts";
import { copy } from "../helpers/copy_project.ts";
import { eventData, post, signedBody } from "../helpers/mailgun.ts";
import { seededRandom } from "../helpers/seeded_random.ts";
import { type Child, PROJECT_DIR, run, signalChild, spawn } from "../helpers/subprocess.ts";
import { createTestDatabase } from "../helpers/test_database.ts";
import { insertRow, newMessageId, startTestService, type TestService } from "../helpers/test_service.ts";

const ON_EMBEDDED = !Deno.env.get("DATABASE_URL");
const SECRET_BYTES = crypto.getRandomValues(new Uint8Array(32));
const SECRET = `whsec_${btoa(String.fromCharCode(...SECRET_BYTES))}`;

/** The follow task's flags, from deno.json (its permissions), so that the test runs what users run. */
function followArgs(args: string[]): string[] {
  const words = taskCommand("follow").trim().split(/\s+/);
  return ["run", ...words.slice(2, -1).filter((flag) => flag !== "--env-file"), words.at(-1)!, ...args];
}

/** A Standard Webhooks receiver on loopback that checks every signature and keeps every delivery. */
function startReceiver(answer: (id: string, attempt: number) => number = () => 200) {
  const deliveries: { id: string; status: number; body: Record<string, unknown> }[] = [];
  const attempts = new Map<string, number>();
  let badSignatures = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const body = await request.text();
    const id = request.headers.get("webhook-id") ?? "";
    const timestamp = Number(request.headers.get("webhook-timestamp"));
    const expected = `v1,${signStandardWebhook(SECRET_BYTES, id, timestamp, body)}`;
    const fresh = Math.abs(Date.now() / 1000 - timestamp) < 300;
    if (request.headers.get("webhook-signature") !== expected || !fresh) {
      badSignatures++;
      return new Response("bad signature", { status: 401 });
    }
    const attempt = (attempts.get(id) ?? 0) + 1;
    attempts.set(id, attempt);
    const status = answer(id, attempt);
    deliveries.push({ id, status, body: JSON.parse(body) });
    return new Response(null, { status });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/hook`,
    deliveries,
    badSignatures: () => badSignatures,
    close: () => server.shutdown(),
  };
}

/** The trail's entries as cursors, in the contract's order. */
async function trailCursors(svc: TestService): Promise<string[]> {
  const rows = await svc.sql`select feed_txid::text || ':' || id::text as cursor from email_events
                             order by feed_txid, id`;
  return rows.map((row) => row.cursor as string);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stopChild(child: Child, signal: Deno.Signal): Promise<void> {
  signalChild(child, signal);
  const timer = setTimeout(() => signalChild(child, "SIGKILL"), 10_000);
  await child.process.status;
  clearTimeout(timer);
  await child.drained;
}

Deno.test({
  name:
    "two instances, commits out of id order, a consumer and a follower killed at random: every change once, in order",
  ignore: ON_EMBEDDED,
}, async () => {
  const random = seededRandom(23);
  const db = await createTestDatabase();
  const a = await startTestService({}, db);
  const b = await startTestService({}, db);
  const receiver = startReceiver((_id, attempt) => (attempt === 1 && random() < 0.05 ? 503 : 200));
  const cursorFile = `.follow/test-${crypto.randomUUID()}`;
  const children: Child[] = [];
  try {
    await a.sql`create table feed_cursor (one boolean primary key, cursor text not null)`;
    await a.sql`create table handled (seq bigserial, cursor text primary key, row_kind text, row_id text, rank int)`;
    const rows: { kind: "documents" | "tenants"; id: number; messageId: string }[] = [];
    for (let i = 0; i < 24; i++) {
      const kind = i % 4 === 0 ? "tenants" : "documents";
      const messageId = newMessageId();
      rows.push({ kind, id: await insertRow(a.sql, kind, messageId), messageId });
    }
    let consumer = spawn(["run", "--allow-net", "--allow-env", "tests/helpers/feed_consumer_child.ts", db.url]);
    const follow = (from: string[]) =>
      spawn(
        followArgs(["--forward", receiver.url, "--cursor-file", cursorFile, "--json", "--poll-ms", "500", ...from]),
        {
          env: { DATABASE_URL: db.url, FOLLOW_SECRET: SECRET },
        },
      );
    let follower = follow(["--from", "beginning"]);
    await consumer.waitFor((line) => line === "consuming");

    // Traffic: webhooks to both instances, and transactions that take their id, then wait before committing.
    let sending = true;
    let held = 0;
    const senders = [a, b].map(async (svc) => {
      while (sending) {
        const row = rows[Math.floor(random() * rows.length)];
        const kind = (["delivered", "permanent", "temporary", "complained"] as const)[Math.floor(random() * 4)];
        const response = await post(svc.url, signedBody(svc.key, eventData(kind, row.messageId)).body);
        assert.equal(response.status, 200, JSON.stringify(response.json));
        // A few thousand entries in all, however fast the service: the follower forwards them one by one.
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    });
    const holders = [0, 1].map(async () => {
      while (sending) {
        const row = rows[Math.floor(random() * rows.length)];
        await a.sql.begin(async (tx) => {
          await tx`insert into email_events (${tx(row.kind === "documents" ? "document_id" : "tenant_id")}, type,
                     mailgun_event_id, event_timestamp, event_data)
                   values (${row.id}, 'EMAIL_TEMP_FAILED', ${`held-${crypto.randomUUID()}`}, now(), '{}')`;
          await new Promise((resolve) => setTimeout(resolve, 50 + random() * 400));
        });
        held++;
      }
    });
    // Kill -9 and restart both readers at random while the traffic runs.
    let consumerKills = 0;
    let followerKills = 0;
    const killer = (async () => {
      const until = Date.now() + 12_000;
      while (Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 300 + random() * 1200));
        if (random() < 0.5) {
          await stopChild(consumer, "SIGKILL");
          consumerKills++;
          consumer = spawn(["run", "--allow-net", "--allow-env", "tests/helpers/feed_consumer_child.ts", db.url]);
          await consumer.waitFor((line) => line === "consuming");
        } else {
          await stopChild(follower, "SIGKILL");
          followerKills++;
          // Killed before its first read, it kept no cursor yet: started again as it was first started.
          follower = follow(await exists(cursorFile) ? [] : ["--from", "beginning"]);
        }
      }
    })();
    await killer;
    sending = false;
    await Promise.all([...senders, ...holders]);
    assert.ok(held > 5, `held ${held} transactions`);

    const trail = await trailCursors(a);
    assert.ok(trail.length > 200, `${trail.length} entries`);
    await until("the consumer to catch up", async () => {
      const [{ n }] = await a.sql`select count(*)::int as n from handled`;
      return n >= trail.length;
    });
    await until(
      "the follower to catch up",
      // Taken, not only tried: the receiver answers some first attempts 503, and the retry comes later.
      () => new Set(receiver.deliveries.filter((d) => d.status === 200).map((d) => d.id)).size >= trail.length,
      120_000,
    );
    children.push(consumer, follower);

    // The consumer (cursor stored with its writes): each change exactly once, in the contract's order.
    const handled = await a.sql`select cursor from handled order by seq`;
    assert.deepEqual(handled.map((row) => row.cursor), trail, `${consumerKills} kills`);
    // Its ranks say each row's status: the highest one a row's changes carried.
    for (const row of rows) {
      const [state] = await a.sql`select mailgun_webhook.status_rank(email_status) as rank
                                  from ${a.sql(row.kind)} where id = ${row.id}`;
      const [top] = await a.sql`select coalesce(max(rank), 0) as rank from handled
                                where row_kind = ${row.kind === "documents" ? "document" : "tenant"}
                                  and row_id = ${String(row.id)}`;
      // Every row starts SENT (rank 1); temporary failures (the held transactions' too) carry rank 0.
      assert.equal(Math.max(top.rank, 1), state.rank, `${row.kind} ${row.id}`);
    }

    // The follower (cursor in a file, written after each delivery): every change delivered, first deliveries in
    // order; a change delivered again only as the one in hand when a kill came, under the same webhook-id.
    assert.equal(receiver.badSignatures(), 0);
    const accepted = receiver.deliveries.filter((delivery) => delivery.status === 200);
    const firsts: string[] = [];
    const seen = new Set<string>();
    let redelivered = 0;
    for (const delivery of accepted) {
      if (seen.has(delivery.id)) {
        redelivered++;
        assert.equal(delivery.id, firsts.at(-1), "only the last change delivered is ever delivered again");
        continue;
      }
      seen.add(delivery.id);
      firsts.push(delivery.id);
      assert.equal((delivery.body.data as { cursor: string }).cursor, delivery.id);
    }
    assert.deepEqual(firsts, trail);
    assert.ok(redelivered <= followerKills, `${redelivered} re-deliveries, ${followerKills} kills`);
    assert.ok(receiver.deliveries.some((delivery) => delivery.status === 503), "some first attempts failed");
    console.log(
      `${trail.length} entries, ${held} held transactions, ${consumerKills} consumer and ${followerKills} follower ` +
        `kills, ${redelivered} re-deliveries`,
    );
  } finally {
    for (const child of children) await stopChild(child, "SIGTERM");
    await receiver.close();
    await Deno.remove(`${PROJECT_DIR}${cursorFile}`).catch(() => {});
    await a.close();
    await b.close();
    await db.drop();
  }
});

Deno.test({
  name: "a follower away while thousands of entries are written catches up from its cursor; a dead receiver stops it",
  ignore: ON_EMBEDDED,
}, async () => {
  const svc = await startTestService();
  const cursorFile = `.follow/test-${crypto.randomUUID()}`;
  let down = false;
  const receiver = startReceiver(() => (down ? 503 : 200));
  try {
    const doc = await insertRow(svc.sql, "documents", newMessageId());
    const env = { DATABASE_URL: svc.db.url, FOLLOW_SECRET: SECRET };
    const args = ["--forward", receiver.url, "--cursor-file", cursorFile, "--once", "--json"];
    // The first run starts now and keeps that cursor: what is written while it is away is not lost.
    const first = await run(followArgs(args), { env });
    assert.equal(first.code, 0, first.stderr);
    const kept = (await Deno.readTextFile(`${PROJECT_DIR}${cursorFile}`)).trim();
    // An hour's worth of traffic while nobody follows: 3000 entries in 300 transactions.
    for (let i = 0; i < 300; i++) {
      await svc.sql`insert into email_events (document_id, type, mailgun_event_id, event_timestamp, event_data)
                    select ${doc}, 'EMAIL_TEMP_FAILED', 'away-' || ${i} || '-' || n, now() - interval '1 hour', '{}'
                    from generate_series(1, 10) n`;
    }
    await until("the trail to settle", async () => {
      const [{ n }] = await svc.sql`select count(*)::int as n from mailgun_webhook.feed_after(${kept}, 10000)`;
      return n === 3000;
    });
    const second = await run(followArgs(args), { env });
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(receiver.deliveries.map((delivery) => delivery.id), await trailCursors(svc));
    assert.equal(second.stdout.trim().split("\n").length, 3000);

    // A receiver that answers 503 to everything: bounded retries, exit 1, the cursor left before the change.
    down = true;
    const before = (await Deno.readTextFile(`${PROJECT_DIR}${cursorFile}`)).trim();
    await svc.sql`insert into email_events (document_id, type, mailgun_event_id, event_timestamp, event_data)
                  values (${doc}, 'EMAIL_COMPLAINED', 'last', now(), '{}')`;
    const failed = await run(followArgs([...args, "--max-attempts", "3"]), { env });
    assert.equal(failed.code, 1, failed.stdout);
    assert.match(failed.stderr, /Could not deliver \d+:\d+ after 3 attempts: HTTP 503/);
    assert.equal((await Deno.readTextFile(`${PROJECT_DIR}${cursorFile}`)).trim(), before);
    const attempts = receiver.deliveries.filter((delivery) => delivery.status === 503);
    assert.equal(attempts.length, 3);
    assert.equal(new Set(attempts.map((delivery) => delivery.id)).size, 1, "the same webhook-id each time");
    // Stopped (SIGTERM) while retrying: a clean stop, exit 0, the cursor still before the change.
    const retrying = spawn(followArgs(args), { env });
    await until("a retry", () => retrying.stderrLines.some((line) => line.includes("retrying in")));
    await stopChild(retrying, "SIGTERM");
    assert.equal((await retrying.process.status).code, 0, retrying.stderrLines.join("\n"));
    assert.equal((await Deno.readTextFile(`${PROJECT_DIR}${cursorFile}`)).trim(), before);
    // Back up: the change is delivered on the next run.
    down = false;
    const again = await run(followArgs(args), { env });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(receiver.deliveries.at(-1)!.id, attempts[0].id);
    assert.equal(receiver.badSignatures(), 0);
  } finally {
    await receiver.close();
    await Deno.remove(`${PROJECT_DIR}${cursorFile}`).catch(() => {});
    await svc.close();
  }
});

Deno.test("deno task follow prints the changes on the embedded database too, and replays from a cursor", async () => {
  const svc = await startTestService();
  const cursorFile = `.follow/test-${crypto.randomUUID()}`;
  try {
    const messageId = newMessageId();
    await insertRow(svc.sql, "documents", messageId);
    for (const kind of ["delivered", "complained"] as const) {
      assert.equal((await post(svc.url, signedBody(svc.key, eventData(kind, messageId)).body)).status, 200);
    }
    const env = { DATABASE_URL: svc.db.url };
    const all = await run(followArgs(["--from", "beginning", "--once", "--cursor-file", cursorFile]), { env });
    assert.equal(all.code, 0, all.stderr);
    const lines = all.stdout.trim().split("\n");
    assert.equal(lines.length, 2, all.stdout);
    assert.match(lines[0], /document \d+ {2}EMAIL_DELIVERED {2}-> DELIVERED \(rank 2\) {2}\[\d+:\d+\]$/);
    assert.match(lines[1], /EMAIL_COMPLAINED {2}-> COMPLAINED \(rank 4\)/);
    const firstCursor = /\[(\d+:\d+)\]$/.exec(lines[0])![1];
    const replay = await run(followArgs(["--from", firstCursor, "--once", "--json", "--cursor-file", cursorFile]), {
      env,
    });
    assert.equal(replay.code, 0, replay.stderr);
    const replayed = replay.stdout.trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(replayed.map((change) => change.status), ["COMPLAINED"]);
    assert.ok(!replay.stdout.includes("@"), "no address printed");
    // A cursor the feed never gave is refused before anything is read.
    const bad = await run(followArgs(["--from", "yesterday", "--cursor-file", cursorFile]), { env });
    assert.equal(bad.code, 2);
    // --forward without FOLLOW_SECRET is refused; a secret that is not whsec_ and base64 is named, never quoted.
    const noSecret = await run(followArgs(["--forward", "http://127.0.0.1:9/", "--cursor-file", cursorFile]), { env });
    assert.equal(noSecret.code, 1);
    assert.match(noSecret.stderr, /FOLLOW_SECRET is required with --forward/);
    const badSecret = await run(followArgs(["--forward", "http://127.0.0.1:9/", "--cursor-file", cursorFile]), {
      env: { ...env, FOLLOW_SECRET: "hunter2-not-a-secret" },
    });
    assert.equal(badSecret.code, 1);
    assert.match(badSecret.stderr, /FOLLOW_SECRET must be a Standard Webhooks secret/);
    assert.ok(!badSecret.stderr.includes("hunter2"));
  } finally {
    await Deno.remove(`${PROJECT_DIR}${cursorFile}`).catch(() => {});
    await svc.close();
  }
});

Deno.test("fresh clone on the embedded default: follow prints what simulate applied, through the running service", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mgwh-follow-" });
  await copy(dir);
  const service = spawn(["task", "start"], { cwd: dir, env: { PORT: "0" } });
  let follower: Child | undefined;
  try {
    const url = JSON.parse(await service.waitFor((line) => line.includes('"msg":"listening"'), 120_000)).url as string;
    const messageId = "<20260101120000.4f1c2a9e8b7d6c5a@mg.comprobify.test>";
    const insert = await run([
      "task",
      "sql",
      `insert into documents (email_message_id, email_status)
                                              values ('${messageId}', 'SENT')`,
    ], { cwd: dir });
    assert.equal(insert.code, 0, insert.stderr);
    // Started before the change: it keeps "now" in .follow/cursor, polls, and prints the change once committed.
    follower = spawn(["task", "--quiet", "follow", "--json", "--poll-ms", "200"], { cwd: dir });
    await until("the follower's cursor", async () => (await readCursorFile(`${dir}/.follow/cursor`)) !== undefined);
    const simulate = await run(["task", "simulate", "complained", messageId, "--url", url], { cwd: dir });
    assert.equal(simulate.code, 0, simulate.stderr + simulate.stdout);
    const line = JSON.parse(await follower.waitFor((line) => line.startsWith("{"), 30_000));
    assert.equal(line.status, "COMPLAINED");
    assert.equal(line.rank, 4);
    assert.equal(line.row_kind, "document");
    await stopChild(follower, "SIGTERM");
    assert.equal((await follower.process.status).code, 0);
    assert.equal(await readCursorFile(`${dir}/.follow/cursor`), line.cursor);
    assert.match(follower.stderrLines.join("\n"), /embedded database of the running service/);
  } finally {
    if (follower !== undefined) await stopChild(follower, "SIGKILL");
    await stopChild(service, "SIGTERM");
    await Deno.remove(dir, { recursive: true });
  }
});
