import { z } from "zod";
import { sha256Hex } from "../encoding/sha256_hex.ts";
import { NotStorableError, storableJson } from "../encoding/storable_json.ts";
import { UnusableEventError } from "./mailgun_errors.ts";
import { type EventEffect, mapEvent } from "./map_event.ts";

/** Event timestamps past 9999-12-31 are not times (PostgreSQL's timestamptz stops later, but nothing is sent then). */
const MAX_EVENT_TIMESTAMP_SECONDS = 253402300799;

/**
 * Marks an event id the service derived: Mailgun's real events carry an `id`, but captured and trimmed ones
 * (test fixtures, forwarded payloads) may not. The event is then keyed by the SHA-256 of its event-data, so a
 * re-delivery of the same body is still recorded once.
 */
export const DERIVED_EVENT_ID_PREFIX = "sha256:";

/** A usable Mailgun event. */
export interface ParsedEvent {
  /** Mailgun's event name, e.g. `delivered`. */
  event: string;
  /** Mailgun's event id (unique within a day only), or one derived from the event-data when it has none. */
  id: string;
  /** Null for events this service ignores. */
  effect: EventEffect | null;
  /** Seconds, with a fraction. Set when `effect` is. */
  timestamp: number;
  /**
   * The Message-ID without angle brackets; null when a tracked event has none
   * (a delayed bounce may come with `message.headers: {}`): it matches no row.
   */
  messageId: string | null;
  recipient: string | null;
  severity: string | null;
  reason: string | null;
  /** The event-data as JSON: what is stored, and (in its jsonb form) what the token is bound to. */
  json: string;
}

const identitySchema = z.looseObject({
  event: z.string().min(1).max(64),
  id: z.string().min(1).max(256).optional(),
});

const optionalText = z.string().max(2048).nullish().transform((value) => value ?? null);

const trackedSchema = z.looseObject({
  timestamp: z.union([z.number(), z.string().regex(/^\d+(\.\d+)?$/).transform(Number)])
    .pipe(z.number().finite().min(0).max(MAX_EVENT_TIMESTAMP_SECONDS)),
  recipient: optionalText,
  severity: optionalText,
  reason: optionalText,
  // Absent, null or empty: the event matches nothing (200 unmatched); any other non-string is malformed.
  message: z.looseObject({
    headers: z.looseObject({ "message-id": z.string().max(998).nullish() }).nullish(),
  }).nullish(),
});

/**
 * Checks the event-data of a signed webhook and extracts what the service
 * uses. Throws an {@link UnusableEventError} when it can never be used.
 */
export function parseEventData(eventData: unknown): ParsedEvent {
  if (typeof eventData !== "object" || eventData === null || Array.isArray(eventData)) {
    throw new UnusableEventError("event-data is missing or not an object.");
  }
  let json: string;
  try {
    json = storableJson(eventData);
  } catch (error) {
    if (error instanceof NotStorableError) {
      throw new UnusableEventError(`event-data cannot be stored: ${error.message}`, { cause: error });
    }
    throw error;
  }
  const identity = identitySchema.safeParse(eventData);
  if (!identity.success) throw new UnusableEventError(`event-data is unusable: ${describe(identity.error)}`);
  const { event } = identity.data;
  const id = identity.data.id ?? DERIVED_EVENT_ID_PREFIX + sha256Hex(json);
  let effect: EventEffect | null;
  try {
    effect = mapEvent(event, (eventData as Record<string, unknown>).severity);
  } catch (error) {
    throw new UnusableEventError(`event-data is unusable: ${(error as Error).message}`, { cause: error });
  }
  if (effect === null) {
    return { event, id, effect, timestamp: 0, messageId: null, recipient: null, severity: null, reason: null, json };
  }
  const tracked = trackedSchema.safeParse(eventData);
  if (!tracked.success) throw new UnusableEventError(`event-data is unusable: ${describe(tracked.error)}`);
  // The timestamp is checked even so: without it an event could not be ordered or told from a re-delivery.
  const messageId = bareMessageId(tracked.data.message?.headers?.["message-id"] ?? "");
  return {
    event,
    id,
    effect,
    timestamp: tracked.data.timestamp,
    messageId: messageId === "" ? null : messageId,
    recipient: tracked.data.recipient,
    severity: tracked.data.severity,
    reason: tracked.data.reason,
    json,
  };
}

/** Mailgun sends the Message-ID without angle brackets; its send API returns it with them. */
export function bareMessageId(messageId: string): string {
  return messageId.trim().replace(/^<(.*)>$/, "$1").trim();
}

function describe(error: z.ZodError): string {
  const issue = error.issues[0];
  const path = issue.path.length > 0 ? issue.path.join(".") : "event-data";
  return `${path}: ${issue.message}`;
}
