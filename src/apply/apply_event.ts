import type { BatchWriter } from "../batch_writer/batch_writer.ts";
import type { BatchRow, TokenWrite } from "../db/write_batch_query.ts";
import type { ParsedEvent } from "../mailgun/parse_event_data.ts";
import { SignatureExpiredError } from "./signature_expired_error.ts";
import { TokenReusedError } from "./token_reused_error.ts";

/** What authorises one write: a verified signature's token, or one made by a trusted tool. */
interface Authorisation {
  token: string;
  /** Unix seconds: when it was signed (pruned after the signature window). */
  signedAt: number;
}

/** What applying one event did. */
export type AppliedOutcome = "applied" | "duplicate" | "unmatched" | "ignored";

/** What applying one event did, and to how many rows. */
interface AppliedEvent {
  outcome: AppliedOutcome;
  /** Documents and tenants whose message id matched. */
  rows: number;
}

/**
 * Applies a parsed event under an authorisation: the one path by which an
 * event reaches the database, whether it came by webhook or by a tool.
 * Throws a {@link TokenReusedError} when the token was used with another event,
 * a {@link SignatureExpiredError} when the signature is older than the prune horizon.
 */
export async function applyEvent(
  writer: BatchWriter,
  parsed: ParsedEvent,
  auth: Authorisation,
): Promise<AppliedEvent> {
  if (parsed.effect === null) {
    await spendToken(writer, auth, { eventData: parsed.json });
    return { outcome: "ignored", rows: 0 };
  }
  if (parsed.messageId === null) {
    // Recognised but matching nothing (a delayed bounce with `message.headers: {}`): Mailgun need not
    // retry it, and its token is spent, bound to this event-data, like an ignored event's.
    await spendToken(writer, auth, { eventData: parsed.json });
    return { outcome: "unmatched", rows: 0 };
  }
  const result = await writer.write(batchRowOf(parsed, auth));
  if (result.expired) throw new SignatureExpiredError();
  if (!result.accepted) throw new TokenReusedError();
  const outcome = result.matched === 0 ? "unmatched" : result.appended > 0 ? "applied" : "duplicate";
  return { outcome, rows: result.matched };
}

/**
 * What the batch statement writes for `parsed` under `auth`: the event with
 * its token when it is tracked and names a message, else the token alone,
 * bound to the event-data.
 */
export function batchRowOf(parsed: ParsedEvent, auth: Authorisation): BatchRow {
  if (parsed.effect === null || parsed.messageId === null) {
    return { kind: "token", token: auth.token, signedAt: auth.signedAt, binding: { eventData: parsed.json } };
  }
  return {
    kind: "event",
    token: auth.token,
    signedAt: auth.signedAt,
    event: {
      type: parsed.effect.type,
      status: parsed.effect.status,
      eventId: parsed.id,
      eventTimestamp: parsed.timestamp,
      messageId: parsed.messageId,
      recipient: parsed.recipient,
      severity: parsed.severity,
      reason: parsed.reason,
      eventData: parsed.json,
    },
  };
}

/**
 * Spends a token without applying anything (ignored or unusable events), so
 * that it cannot carry another body: bound to the event-data (hashed by the
 * database) or, for a body that is not usable event-data, to a hash of its bytes.
 */
export async function spendToken(
  writer: BatchWriter,
  auth: Authorisation,
  binding: TokenWrite["binding"],
): Promise<void> {
  const result = await writer.write({ kind: "token", token: auth.token, signedAt: auth.signedAt, binding });
  if (result.expired) throw new SignatureExpiredError();
  if (!result.accepted) throw new TokenReusedError();
}
