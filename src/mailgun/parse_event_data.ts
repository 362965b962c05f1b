import { NotStorableError, storableJson } from "../encoding/storable_json.ts";
import { UnusableEventError } from "./mailgun_errors.ts";
import { type EventEffect, mapEvent } from "./map_event.ts";

/** Event timestamps past 9999-12-31 are not times (PostgreSQL's timestamptz stops later, but nothing is sent then). */
const MAX_EVENT_TIMESTAMP_SECONDS = 253402300799;

/**
 * Marks an event id the service derived: Mailgun's real events carry an `id`, but captured and trimmed ones
 * (test fixtures, forwarded payloads) may not. The database then keys the event by the SHA-256 of its
 * event-data's jsonb form (mailgun_webhook.body_hash), so a re-delivery of the same event is recorded once.
 */
export const DERIVED_EVENT_ID_PREFIX = "sha256:";

/** A usable Mailgun event. */
export interface ParsedEvent {
  /** Mailgun's event name, e.g. `delivered`. */
  event: string;
  /** Mailgun's event id (unique within a day only); null when it has none (the database derives one). */
  id: string | null;
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

/** Longest event name: Mailgun's are a few words. */
const MAX_EVENT_NAME_LENGTH = 64;
/** Longest event id: Mailgun's are 22 characters. */
const MAX_EVENT_ID_LENGTH = 256;
/** Longest recipient, severity or reason kept. */
const MAX_TEXT_LENGTH = 2048;
/** RFC 5322's line limit bounds a Message-ID header. */
const MAX_MESSAGE_ID_LENGTH = 998;
/** Unix seconds sent as a string, with an optional fraction. */
const TIMESTAMP_TEXT = /^\d+(\.\d+)?$/;

type Fields = Record<string, unknown>;

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
  const fields = eventData as Fields;
  const event = text(fields.event, "event", 1, MAX_EVENT_NAME_LENGTH);
  const id = fields.id === undefined || fields.id === null ? null : text(fields.id, "id", 1, MAX_EVENT_ID_LENGTH);
  let effect: EventEffect | null;
  try {
    effect = mapEvent(event, fields.severity);
  } catch (error) {
    throw new UnusableEventError(`event-data is unusable: ${(error as Error).message}`, { cause: error });
  }
  if (effect === null) {
    return { event, id, effect, timestamp: 0, messageId: null, recipient: null, severity: null, reason: null, json };
  }
  // The timestamp is checked even so: without it an event could not be ordered or told from a re-delivery.
  const timestamp = eventTimestamp(fields.timestamp);
  const recipient = optionalText(fields.recipient, "recipient", MAX_TEXT_LENGTH);
  const severity = optionalText(fields.severity, "severity", MAX_TEXT_LENGTH);
  const reason = optionalText(fields.reason, "reason", MAX_TEXT_LENGTH);
  // Absent, null or empty: the event matches nothing (200 unmatched); any other non-string is malformed.
  const message = optionalObject(fields.message, "message");
  const headers = message === null ? null : optionalObject(message.headers, "message.headers");
  const rawMessageId = headers === null
    ? null
    : optionalText(headers["message-id"], "message.headers.message-id", MAX_MESSAGE_ID_LENGTH);
  const messageId = bareMessageId(rawMessageId ?? "");
  return {
    event,
    id,
    effect,
    timestamp,
    messageId: messageId === "" ? null : messageId,
    recipient,
    severity,
    reason,
    json,
  };
}

/** Mailgun sends the Message-ID without angle brackets; its send API returns it with them. */
export function bareMessageId(messageId: string): string {
  return messageId.trim().replace(/^<(.*)>$/, "$1").trim();
}

function unusable(path: string, problem: string): UnusableEventError {
  return new UnusableEventError(`event-data is unusable: ${path}: ${problem}`);
}

/** A string of `min` to `max` characters. */
function text(value: unknown, path: string, min: number, max: number): string {
  if (typeof value !== "string") throw unusable(path, `expected a string, got ${kindOf(value)}.`);
  if (value.length < min) throw unusable(path, `expected at least ${min} character(s).`);
  if (value.length > max) throw unusable(path, `expected at most ${max} characters.`);
  return value;
}

/** A string of at most `max` characters, or null when absent or null. */
function optionalText(value: unknown, path: string, max: number): string | null {
  return value === undefined || value === null ? null : text(value, path, 0, max);
}

/** An object (not an array), or null when absent or null. */
function optionalObject(value: unknown, path: string): Fields | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "object" || Array.isArray(value)) {
    throw unusable(path, `expected an object, got ${kindOf(value)}.`);
  }
  return value as Fields;
}

/** Unix seconds, as a number or a decimal string, from 0 to 9999-12-31. */
function eventTimestamp(value: unknown): number {
  const seconds = typeof value === "string" && TIMESTAMP_TEXT.test(value) ? Number(value) : value;
  if (typeof seconds !== "number") {
    throw unusable(
      "timestamp",
      `expected Unix seconds, got ${typeof value === "string" ? "other text" : kindOf(value)}.`,
    );
  }
  if (!Number.isFinite(seconds) || seconds < 0 || seconds > MAX_EVENT_TIMESTAMP_SECONDS) {
    throw unusable("timestamp", `expected Unix seconds from 0 to ${MAX_EVENT_TIMESTAMP_SECONDS}.`);
  }
  return seconds;
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "string" ? "a string" : typeof value;
}
