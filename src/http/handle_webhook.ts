import type { EventRow } from "../db/apply_events_query.ts";
import type { EventApplier } from "../apply/event_applier.ts";
import { type ParsedEvent, parseEventData } from "../mailgun/parse_event_data.ts";
import { parseWebhookBody } from "../mailgun/parse_webhook_body.ts";
import { sha256Hex } from "../mailgun/sha256_hex.ts";
import { type SignatureWindow, type VerifiedSignature, verifySignature } from "../mailgun/verify_signature.ts";
import { errorStatus, NotAcceptableError, type Outcome, UnauthorizedError } from "./errors.ts";
import { readBody } from "./read_body.ts";

/** What the webhook endpoint needs. */
export interface WebhookDeps {
  signingKeys: CryptoKey[];
  window: SignatureWindow;
  bodyLimitBytes: number;
  bodyTimeoutMs: number;
  applier: EventApplier;
}

/** A handled webhook: its status, outcome, and what to log about it. */
export interface WebhookResult {
  status: number;
  outcome: Outcome;
  /** Why it was refused; safe to show the caller. */
  message?: string;
  eventId?: string;
  event?: string;
  rows?: number;
  keyIndex?: number;
  /** The code of an unexpected error, for the log. */
  errorCode?: string;
}

type Context = Pick<WebhookResult, "eventId" | "event" | "keyIndex">;

/** request -> verify -> parse -> apply, and the status that tells Mailgun what to do next. Never throws. */
export async function handleWebhook(request: Request, deps: WebhookDeps): Promise<WebhookResult> {
  const context: Context = {};
  try {
    return await processWebhook(request, deps, context);
  } catch (error) {
    const { status, outcome, message } = errorStatus(error);
    const code = (error as { code?: unknown })?.code;
    return { ...context, status, outcome, message, errorCode: typeof code === "string" ? code : undefined };
  }
}

async function processWebhook(request: Request, deps: WebhookDeps, context: Context): Promise<WebhookResult> {
  const bytes = await readBody(request, deps.bodyLimitBytes, deps.bodyTimeoutMs);
  const body = parseWebhookBody(bytes);
  const signature = await verifySignature(body.signature, deps.signingKeys, deps.window);
  context.keyIndex = signature.keyIndex;
  let parsed: ParsedEvent;
  try {
    parsed = parseEventData(body.eventData);
  } catch (error) {
    if (error instanceof NotAcceptableError) {
      // The token is spent all the same, so that its signature cannot carry another body.
      await consumeToken(deps.applier, signature, await sha256Hex(bytes));
    }
    throw error;
  }
  context.eventId = parsed.id;
  context.event = parsed.event;
  const bodyHash = await sha256Hex(parsed.json);
  if (parsed.effect === null) {
    await consumeToken(deps.applier, signature, bodyHash);
    return { ...context, status: 200, outcome: "ignored", rows: 0 };
  }
  const result = await deps.applier.apply({
    token: signature.token,
    bodyHash,
    signedAt: signature.timestamp,
    type: parsed.effect.type,
    status: parsed.effect.status,
    eventId: parsed.id,
    eventTimestamp: parsed.timestamp,
    messageId: parsed.messageId,
    recipient: parsed.recipient,
    severity: parsed.severity,
    reason: parsed.reason,
    eventData: parsed.json,
  });
  if (!result.accepted) throw replayed();
  const outcome = result.matched === 0 ? "unmatched" : result.appended > 0 ? "applied" : "duplicate";
  return { ...context, status: 200, outcome, rows: result.matched };
}

async function consumeToken(applier: EventApplier, signature: VerifiedSignature, bodyHash: string): Promise<void> {
  const row: EventRow = {
    token: signature.token,
    bodyHash,
    signedAt: signature.timestamp,
    type: null,
    status: null,
    eventId: null,
    eventTimestamp: null,
    messageId: null,
    recipient: null,
    severity: null,
    reason: null,
    eventData: null,
  };
  if (!(await applier.apply(row)).accepted) throw replayed();
}

function replayed(): UnauthorizedError {
  return new UnauthorizedError("Signature token was already used with a different body.", "replayed");
}
