import { applyEvent, spendToken } from "../apply/apply_event.ts";
import type { BatchWriter } from "../batch_writer/batch_writer.ts";
import { sha256Hex } from "../encoding/sha256_hex.ts";
import { UnusableEventError } from "../mailgun/mailgun_errors.ts";
import { type ParsedEvent, parseEventData } from "../mailgun/parse_event_data.ts";
import { parseWebhookBody, type WebhookBody } from "../mailgun/parse_webhook_body.ts";
import {
  type SignatureWindow,
  type SigningKey,
  type VerifiedSignature,
  verifySignature,
} from "../mailgun/verify_signature.ts";
import type { WebhookReport } from "../reporting/webhook_report.ts";
import { errorStatus, failureCause } from "./error_response.ts";
import { readBody } from "./read_body.ts";

/** What the webhook endpoint needs. */
export interface WebhookDeps {
  signingKeys: SigningKey[];
  /** Keys for subaccounts' `parent-signature`; empty when not configured. */
  parentSigningKeys: SigningKey[];
  window: SignatureWindow;
  bodyLimitBytes: number;
  bodyTimeoutMs: number;
  writer: BatchWriter;
}

/** What is known of a webhook when a step fails: it goes into the report beside the failure. */
type Known = Pick<WebhookReport, "eventId" | "event" | "messageId" | "keyIndex" | "parentKey">;

/**
 * request -> verify -> parse -> apply, and the status that tells Mailgun
 * what to do next. Each step returns what it learned; a failure is reported
 * with what the steps before it learned. Never throws.
 */
export async function handleWebhook(request: Request, deps: WebhookDeps): Promise<WebhookReport> {
  let bytes: Uint8Array;
  let signature: VerifiedSignature;
  let body: WebhookBody;
  try {
    deps.writer.admit();
    bytes = await readBody(request, deps.bodyLimitBytes, deps.bodyTimeoutMs);
    body = parseWebhookBody(bytes);
    signature = verifySignature(body.signature, deps.signingKeys, deps.window, undefined, deps.parentSigningKeys);
  } catch (error) {
    return failed(error, {});
  }
  const signed: Known = { keyIndex: signature.keyIndex, parentKey: signature.parent || undefined };
  const auth = { token: signature.token, signedAt: signature.timestamp };
  let parsed: ParsedEvent;
  try {
    parsed = parseEventData(body.eventData);
  } catch (error) {
    if (!(error instanceof UnusableEventError)) return failed(error, signed);
    try {
      // The token is spent all the same, so that its signature cannot carry another body.
      await spendToken(deps.writer, auth, { bodyHash: sha256Hex(bytes) });
    } catch (spendError) {
      return failed(spendError, signed);
    }
    return failed(error, signed);
  }
  const identified: Known = {
    ...signed,
    eventId: parsed.id ?? undefined,
    event: parsed.event,
    messageId: parsed.messageId ?? undefined,
  };
  try {
    const { outcome, rows } = await applyEvent(deps.writer, parsed, auth);
    return { ...identified, status: 200, outcome, rows };
  } catch (error) {
    return failed(error, identified);
  }
}

function failed(error: unknown, known: Known): WebhookReport {
  return { ...known, ...errorStatus(error), cause: failureCause(error) };
}
