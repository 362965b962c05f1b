/**
 * Property: whatever the order, duplication and signing of a row's events,
 * its final status, status time and trail are the same, and equal to what
 * the ladder says. Seeded; PROPERTY_SEED=<n> replays a failing run.
 */
import assert from "node:assert/strict";
import { eventData, type Kind, post, signedBody } from "./helpers/mailgun.ts";
import { seededRandom, shuffle } from "./helpers/seeded_random.ts";
import { insertRow, newMessageId, rowState, startTestService } from "./helpers/test_service.ts";

const SEED = Number(Deno.env.get("PROPERTY_SEED") ?? Date.now() % 1_000_000);
const ROWS = 24;
const TWINS = 3;
const IN_FLIGHT = 8;

const RANK: Record<string, number> = { SENT: 1, DELIVERED: 2, FAILED: 3, COMPLAINED: 4 };
const STATUS_OF: Record<Kind, string | null> = {
  delivered: "DELIVERED",
  permanent: "FAILED",
  "delayed-bounce": "FAILED",
  temporary: null,
  complained: "COMPLAINED",
  opened: null,
};
const TYPE_OF: Record<Kind, string | null> = {
  delivered: "EMAIL_DELIVERED",
  permanent: "EMAIL_FAILED",
  "delayed-bounce": "EMAIL_FAILED",
  temporary: "EMAIL_TEMP_FAILED",
  complained: "EMAIL_COMPLAINED",
  opened: null,
};

interface PlannedEvent {
  kind: Kind;
  id: string;
  timestamp: number;
}

Deno.test(`random permutations and duplications give one end state (seed ${SEED})`, async () => {
  const random = seededRandom(SEED);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)];
  const svc = await startTestService();
  try {
    const deliveries: { body: string; label: string }[] = [];
    const groups: { table: "documents" | "tenants"; ids: number[]; events: PlannedEvent[] }[] = [];
    for (let r = 0; r < ROWS; r++) {
      const table = r % 4 === 3 ? "tenants" : "documents";
      const count = 1 + Math.floor(random() * 6);
      const base = 1_760_000_000 + Math.floor(random() * 1_000_000);
      const events: PlannedEvent[] = [];
      for (let i = 0; i < count; i++) {
        const kind = pick(["delivered", "permanent", "temporary", "complained", "delayed-bounce", "opened"] as const);
        const timestamp = base + Math.floor(random() * 86_400) + Math.floor(random() * 1e6) / 1e6;
        // Mailgun's ids are unique within a day only: an id used again is another event on another day.
        events.push(
          random() < 0.2 && i > 0
            ? { kind, id: `ev-${r}-0`, timestamp: events[0].timestamp + i * 86_400 }
            : { kind, id: `ev-${r}-${i}`, timestamp },
        );
      }
      const ids: number[] = [];
      // Each twin row receives the same events in its own order and duplication.
      for (let twin = 0; twin < TWINS; twin++) {
        const messageId = newMessageId();
        ids.push(await insertRow(svc.sql, table, random() < 0.5 ? messageId : messageId.slice(1, -1)));
        for (const event of events) {
          const data = eventData(event.kind, messageId.slice(1, -1), { id: event.id, timestamp: event.timestamp });
          const original = signedBody(svc.key, data);
          deliveries.push({ body: original.body, label: `${table} ${twin} ${event.id}` });
          const extra = Math.floor(random() * 3);
          for (let d = 0; d < extra; d++) {
            // A retry either reuses the signature block or is signed afresh.
            const body = random() < 0.5 ? original.body : (signedBody(svc.key, data)).body;
            deliveries.push({ body, label: `${table} ${twin} ${event.id} again` });
          }
        }
      }
      groups.push({ table, ids, events });
    }
    shuffle(deliveries, random);
    let next = 0;
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      while (next < deliveries.length) {
        const delivery = deliveries[next++];
        const response = await post(svc.url, delivery.body);
        assert.equal(response.status, 200, `${delivery.label}: ${JSON.stringify(response.json)}`);
      }
    }));

    for (const group of groups) {
      const distinct = new Map(group.events.map((e) => [`${e.id}|${e.timestamp}`, e]));
      const tracked = [...distinct.values()].filter((e) => TYPE_OF[e.kind] !== null);
      const climbing = tracked.filter((e) => STATUS_OF[e.kind] !== null);
      const top = Math.max(RANK.SENT, ...climbing.map((e) => RANK[STATUS_OF[e.kind]!]));
      const expectedStatus = Object.keys(RANK).find((s) => RANK[s] === top)!;
      const atTop = climbing.filter((e) => RANK[STATUS_OF[e.kind]!] === top).map((e) => e.timestamp);
      const expectedAt = atTop.length === 0 ? null : Math.min(...atTop);
      const expectedTrail = tracked.map((e) => `${TYPE_OF[e.kind]}|${e.id}|${e.timestamp.toFixed(6)}`).sort();
      for (const id of group.ids) {
        const state = await rowState(svc.sql, group.table, id);
        const context = `seed ${SEED}, ${group.table} ${id}, events ${JSON.stringify(group.events)}`;
        assert.equal(state.status, expectedStatus, context);
        if (expectedAt === null) assert.equal(state.statusAt, null, context);
        else assert.ok(Math.abs(state.statusAt!.getTime() / 1000 - expectedAt) < 0.001, context);
        const trail = state.events.map((e) => `${e.type}|${e.mailgun_event_id}|${Number(e.ts).toFixed(6)}`).sort();
        assert.deepEqual(trail, expectedTrail, context);
      }
    }
    console.log(`seed ${SEED}: ${ROWS} event sets x ${TWINS} rows, ${deliveries.length} deliveries`);
  } finally {
    await svc.close();
  }
});
