import type { z } from "zod";
import { NotStorableError, storableJson } from "../encoding/storable_json.ts";
import { quickIdentity, quickTrackedFields, type TrackedFields } from "./event_fast_path.ts";
import { UnusableEventError } from "./mailgun_errors.ts";
import { type EventEffect, mapEvent } from "./map_event.ts";
import { type MailgunEvent, mailgunEventIdentitySchema, mailgunTrackedFieldsSchema } from "./mailgun_event.ts";

/** A usable Mailgun event. */
export interface ParsedEvent {
  /** Mailgun's event name, e.g. `delivered`. */
  event: MailgunEvent["event"];
  /**
   * Mailgun's event id (unique within a day only); null when the event-data has none (`id` missing or null:
   * trimmed captures, forwarded payloads). The database then keys the event by its event-data's hash.
   */
  id: string | null;
  /** Null for events this service ignores. */
  effect: EventEffect | null;
  /** Seconds, with a fraction. Set when `effect` is. */
  timestamp: MailgunEvent["timestamp"];
  /**
   * The Message-ID without angle brackets; null when a tracked event has none
   * (a delayed bounce may come with `message.headers: {}`): it matches no row.
   */
  messageId: string | null;
  recipient: string | null;
  severity: string | null;
  reason: string | null;
  /** The event-data as sent, as JSON: what is stored, and (in its jsonb form) what the token is bound to. */
  json: string;
}

/**
 * Checks the event-data of a signed webhook against the Mailgun event schema
 * (src/mailgun/mailgun_event.ts) and extracts what the service uses. Throws
 * an {@link UnusableEventError} when it can never be used; its message is
 * the path and the problem (`event-data.timestamp: expected ...`), never a value.
 */
export function parseEventData(eventData: unknown): ParsedEvent {
  // The quick check accepts only what the schema would; the schema decides the rest, and words its problems.
  const identity = quickIdentity(eventData) ?? check(mailgunEventIdentitySchema, eventData);
  let json: string;
  try {
    json = storableJson(eventData);
  } catch (error) {
    if (error instanceof NotStorableError) {
      throw new UnusableEventError(`event-data cannot be stored: ${error.message}`, { cause: error });
    }
    throw error;
  }
  const { event } = identity;
  const id = identity.id ?? null;
  const severityField = (eventData as Record<string, unknown>).severity;
  let effect: EventEffect | null;
  try {
    effect = mapEvent(event, severityField);
  } catch (error) {
    // mapEvent's own message quotes the severity: the reason names the field, not what it held.
    throw new UnusableEventError("event-data.severity: expected permanent or temporary for a failed event.", {
      cause: error,
    });
  }
  if (effect === null) {
    return { event, id, effect, timestamp: 0, messageId: null, recipient: null, severity: null, reason: null, json };
  }
  // The timestamp is checked even so: without it an event could not be ordered or told from a re-delivery.
  const tracked = quickTrackedFields(eventData as Record<string, unknown>) ?? trackedFields(eventData);
  // Absent, null or empty: the event matches nothing (200 unmatched).
  const messageId = bareMessageId(tracked.messageId ?? "");
  return {
    event,
    id,
    effect,
    timestamp: tracked.timestamp,
    messageId: messageId === "" ? null : messageId,
    recipient: tracked.recipient ?? null,
    severity: tracked.severity ?? null,
    reason: tracked.reason ?? null,
    json,
  };
}

/** A tracked event's fields, as the schema reads them (or an {@link UnusableEventError}). */
function trackedFields(eventData: unknown): TrackedFields {
  const tracked = check(mailgunTrackedFieldsSchema, eventData);
  return {
    timestamp: tracked.timestamp,
    recipient: tracked.recipient,
    severity: tracked.severity,
    reason: tracked.reason,
    messageId: tracked.message?.headers?.["message-id"],
  };
}

/** Mailgun sends the Message-ID without angle brackets; its send API returns it with them. */
export function bareMessageId(messageId: string): string {
  return messageId.trim().replace(/^<(.*)>$/, "$1").trim();
}

/** The schema's output, or an {@link UnusableEventError} naming the first issue's path. */
function check<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const result = schema.safeParse(value, { error: problem });
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  // The path holds only the schema's own keys (records and arrays of unknowns never fail inside).
  const path = ["event-data", ...issue.path.map(String)].join(".");
  throw new UnusableEventError(`${path}: ${issue.message}`);
}

/**
 * Messages in the service's words for the issues its schema raises; the
 * kind of value received, never the value (it may be a recipient address).
 * Undefined leaves zod's own message, which holds no input either.
 */
function problem(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type":
      return `expected ${withArticle(issue.expected)}, got ${kindOf(issue.input)}.`;
    case "too_small":
      return issue.origin === "string" ? `expected at least ${issue.minimum} character(s).` : undefined;
    case "too_big":
      return issue.origin === "string" ? `expected at most ${issue.maximum} characters.` : undefined;
    default:
      return undefined;
  }
}

function withArticle(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "string" ? "a string" : typeof value;
}
