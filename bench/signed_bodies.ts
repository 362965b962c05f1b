import { signWebhook } from "../src/mailgun/sign_webhook.ts";

const PAYLOADS_DIR = new URL("../tests/payloads/", import.meta.url).pathname;

/** The event-data the bench sends, one of each kind, from the project's own fixtures. */
const PAYLOADS = {
  delivered: readPayload("delivered"),
  permanent: readPayload("failed-permanent"),
  temporary: readPayload("failed-temporary"),
  complained: readPayload("complained"),
};

type Kind = keyof typeof PAYLOADS;

function readPayload(name: string): Record<string, unknown> {
  return JSON.parse(Deno.readTextFileSync(`${PAYLOADS_DIR}${name}.event-data.json`));
}

let eventSequence = 0;

/** The message id of bench document `n` (1-based), as the bench database seeds it. */
export function benchMessageId(n: number): string {
  return `<bench-${n}@mg.bench.test>`;
}

/** One signed webhook body (its own token) with an event of `kind` for document `doc`. */
export function signedBody(key: string, doc: number, kind: Kind): string {
  const data = structuredClone(PAYLOADS[kind]) as Record<string, unknown> & {
    message: { headers: Record<string, string> };
  };
  data.id = `bench-${++eventSequence}-${Math.random().toString(36).slice(2, 10)}`;
  data.timestamp = Date.now() / 1000 - Math.random() * 3600;
  data.message.headers["message-id"] = benchMessageId(doc).slice(1, -1);
  return JSON.stringify({ signature: signWebhook(key), "event-data": data });
}

/**
 * `count` signed webhooks: 70% delivered, 10% temporary failures, 10%
 * permanent failures, 10% complaints, on random documents among `documents`.
 */
export function signedBodies(key: string, count: number, documents: number): string[] {
  const bodies: string[] = [];
  for (let i = 0; i < count; i++) {
    const roll = Math.random() * 10;
    const kind = roll < 7 ? "delivered" : roll < 8 ? "temporary" : roll < 9 ? "permanent" : "complained";
    bodies.push(signedBody(key, 1 + Math.floor(Math.random() * documents), kind));
  }
  return bodies;
}

/** Writes {@link signedBodies}, one per line, for the load generator. */
export async function writeSignedBodies(path: string, key: string, count: number, documents: number): Promise<void> {
  await Deno.writeTextFile(path, signedBodies(key, count, documents).join("\n") + "\n");
}
