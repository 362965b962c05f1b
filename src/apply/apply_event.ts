import { tokenOnlyRow } from "../db/apply_events_query.ts";
import { UnauthorizedError } from "../http/errors.ts";
import type { ParsedEvent } from "../mailgun/parse_event_data.ts";
import type { EventApplier } from "./event_applier.ts";

/** What authorises one write: a verified signature's token, or one made by a trusted tool. */
export interface Authorisation {
  token: string;
  /** Unix seconds: when it was signed (pruned after the signature window). */
  signedAt: number;
}

/** What applying one event did. */
export interface AppliedEvent {
  outcome: "applied" | "duplicate" | "unmatched" | "ignored";
  /** Documents and tenants whose message id matched. */
  rows: number;
}

/**
 * Applies a parsed event under an authorisation: the one path by which an
 * event reaches the database, whether it came by webhook or by a tool.
 * Throws a 401 "replayed" error when the token was used with another event.
 */
export async function applyEvent(
  applier: EventApplier,
  parsed: ParsedEvent,
  auth: Authorisation,
): Promise<AppliedEvent> {
  if (parsed.effect === null) {
    await consumeToken(applier, auth, { eventData: parsed.json });
    return { outcome: "ignored", rows: 0 };
  }
  if (parsed.messageId === null) {
    // Recognised but matching nothing (a delayed bounce with `message.headers: {}`): Mailgun need not
    // retry it, and its token is spent, bound to this event-data, like an ignored event's.
    await consumeToken(applier, auth, { eventData: parsed.json });
    return { outcome: "unmatched", rows: 0 };
  }
  const result = await applier.apply({
    token: auth.token,
    bodyHash: null,
    signedAt: auth.signedAt,
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
  if (!result.accepted) throw replayedError();
  const outcome = result.matched === 0 ? "unmatched" : result.appended > 0 ? "applied" : "duplicate";
  return { outcome, rows: result.matched };
}

/**
 * Spends a token without applying anything (ignored or unusable events), so
 * that it cannot carry another body: bound to the event-data (hashed by the
 * database) or, for a body that is not usable event-data, to a hash of its bytes.
 */
export async function consumeToken(
  applier: EventApplier,
  auth: Authorisation,
  body: { eventData: string } | { bodyHash: string },
): Promise<void> {
  const row = tokenOnlyRow(auth.token, auth.signedAt, body);
  if (!(await applier.apply(row)).accepted) throw replayedError();
}

function replayedError(): UnauthorizedError {
  return new UnauthorizedError("Signature token was already used with a different body.", "replayed");
}
