import { type SignatureBlock, signWebhook } from "../../src/mailgun/sign_webhook.ts";

const PAYLOADS = new URL("../payloads/", import.meta.url);

/** Mailgun's own example event-data, by file stem (e.g. "delivered"). */
export function loadPayload(name: "delivered" | "failed-permanent" | "failed-temporary" | "complained") {
  return JSON.parse(Deno.readTextFileSync(new URL(`${name}.event-data.json`, PAYLOADS))) as Record<string, unknown>;
}

/** The kinds of event the tests send. */
export type Kind = "delivered" | "permanent" | "temporary" | "complained" | "delayed-bounce" | "opened";

let sequence = 0;

/** A realistic event-data for `messageId`, built on Mailgun's example payloads. */
export function eventData(
  kind: Kind,
  messageId: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  const base = kind === "delivered" || kind === "opened"
    ? loadPayload("delivered")
    : kind === "temporary"
    ? loadPayload("failed-temporary")
    : kind === "complained"
    ? loadPayload("complained")
    : loadPayload("failed-permanent");
  const data = structuredClone(base);
  const message = data.message as { headers: Record<string, string> };
  message.headers["message-id"] = messageId;
  data.id = `ev-${Date.now().toString(36)}-${++sequence}-${crypto.randomUUID().slice(0, 8)}`;
  data.timestamp = Date.now() / 1000 - 60 + sequence / 1000;
  if (kind === "opened") data.event = "opened";
  if (kind === "delayed-bounce") data.flags = { ...(data.flags as object), "is-delayed-bounce": true };
  return { ...data, ...overrides };
}

/** A signed webhook body, as Mailgun posts it. */
export function signedBody(
  key: string,
  data: unknown,
  signature?: Partial<SignatureBlock>,
): { body: string; signature: SignatureBlock } {
  const block = signature?.signature ? signature as SignatureBlock : signWebhook(
    key,
    signature?.timestamp,
    signature?.token,
  );
  return { body: JSON.stringify({ signature: block, "event-data": data }), signature: block };
}

/** Posts a body to the webhook and returns status and parsed JSON body. */
export async function post(
  baseUrl: string,
  body: BodyInit,
  headers: HeadersInit = { "content-type": "application/json" },
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${baseUrl}/v1/mailgun/webhook`, { method: "POST", body, headers });
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch {
    json = { text };
  }
  return { status: response.status, json };
}
