import { applyEvent, consumeToken } from "../apply/apply_event.ts";
import type { EventApplier } from "../apply/event_applier.ts";
import { type ParsedEvent, parseEventData } from "../mailgun/parse_event_data.ts";
import { parseWebhookBody, type WebhookBody } from "../mailgun/parse_webhook_body.ts";
import { sha256Hex } from "../mailgun/sha256_hex.ts";
import {
  type SignatureWindow,
  type SigningKey,
  type VerifiedSignature,
  verifySignature,
} from "../mailgun/verify_signature.ts";
import { type ErrorDetails, errorDetails, errorStatus, NotAcceptableError, type Outcome } from "./errors.ts";
import { readBody } from "./read_body.ts";

/** What the webhook endpoint needs. */
export interface WebhookDeps {
  signingKeys: SigningKey[];
  /** Keys for subaccounts' `parent-signature`; empty when not configured. */
  parentSigningKeys: SigningKey[];
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
  /** True when the subaccount's parent-signature verified. */
  parentKey?: boolean;
  /** For the log: the database error's code and message, or a bug's name and stack. */
  error?: ErrorDetails;
}

type Context = Pick<WebhookResult, "eventId" | "event" | "keyIndex" | "parentKey">;

/** request -> verify -> parse -> apply, and the status that tells Mailgun what to do next. Never throws. */
export async function handleWebhook(request: Request, deps: WebhookDeps): Promise<WebhookResult> {
  const context: Context = {};
  try {
    return await processWebhook(request, deps, context);
  } catch (error) {
    const { status, outcome, message } = errorStatus(error);
    const details = errorDetails(error);
    return { ...context, status, outcome, message, error: Object.keys(details).length > 0 ? details : undefined };
  }
}

async function processWebhook(request: Request, deps: WebhookDeps, context: Context): Promise<WebhookResult> {
  const bytes = await readBody(request, deps.bodyLimitBytes, deps.bodyTimeoutMs);
  const body = parseWebhookBody(bytes);
  const signature = verifyBody(body, deps, context);
  const auth = { token: signature.token, signedAt: signature.timestamp };
  let parsed: ParsedEvent;
  try {
    parsed = parseEventData(body.eventData);
  } catch (error) {
    if (error instanceof NotAcceptableError) {
      // The token is spent all the same, so that its signature cannot carry another body.
      await consumeToken(deps.applier, auth, { bodyHash: sha256Hex(bytes) });
    }
    throw error;
  }
  context.eventId = parsed.id;
  context.event = parsed.event;
  const { outcome, rows } = await applyEvent(deps.applier, parsed, auth);
  return { ...context, status: 200, outcome, rows };
}

/** The account's own signature, or else (when parent keys are configured) the block's `parent-signature`. */
function verifyBody(body: WebhookBody, deps: WebhookDeps, context: Context): VerifiedSignature {
  const signature = verifySignature(body.signature, deps.signingKeys, deps.window, undefined, deps.parentSigningKeys);
  context.keyIndex = signature.keyIndex;
  if (signature.parent) context.parentKey = true;
  return signature;
}
