/**
 * A quick check of the event-data shape nearly every webhook has, beside the
 * zod schema of record (src/mailgun/mailgun_event.ts). It reads the same
 * fields under the same limits, builds no intermediate objects, and answers
 * only "accepted, with these values" or "not sure": anything it does not
 * accept outright (a timestamp sent as text, a value of another type, an
 * empty name, ...) goes to the schema, which then decides and words the
 * problem. So it never accepts what the schema refuses; a property test
 * (tests/event_fast_path_test.ts) checks that it agrees with the schema.
 * Parsing with zod cost about 5 µs of a webhook's CPU alone, and more in
 * the collection of the objects it builds.
 */
import {
  type MailgunEvent,
  type MailgunEventIdentity,
  MAX_EVENT_ID_LENGTH,
  MAX_EVENT_NAME_LENGTH,
  MAX_EVENT_TIMESTAMP_SECONDS,
  MAX_MESSAGE_ID_LENGTH,
  MAX_TEXT_LENGTH,
} from "./mailgun_event.ts";

/** A tracked event's fields as the schema would read them (the service uses no others). */
export type TrackedFields = Pick<MailgunEvent, "timestamp" | "recipient" | "severity" | "reason"> & {
  /** `message.headers["message-id"]`, absent when any step of that path is. */
  messageId: string | null | undefined;
};

/** The event's name and id when the schema would accept them as they are; undefined when not sure. */
export function quickIdentity(data: unknown): MailgunEventIdentity | undefined {
  if (!isRecord(data)) return undefined;
  const { event, id } = data;
  if (typeof event !== "string" || event.length < 1 || event.length > MAX_EVENT_NAME_LENGTH) return undefined;
  if (
    id !== undefined && id !== null && !(typeof id === "string" && id.length >= 1 && id.length <= MAX_EVENT_ID_LENGTH)
  ) {
    return undefined;
  }
  return { event, id };
}

/** A tracked event's fields when the schema would accept them as they are; undefined when not sure. */
export function quickTrackedFields(data: Record<string, unknown>): TrackedFields | undefined {
  const timestamp = data.timestamp;
  // A number in range (NaN fails both comparisons); a timestamp sent as text goes to the schema.
  if (typeof timestamp !== "number" || !(timestamp >= 0 && timestamp <= MAX_EVENT_TIMESTAMP_SECONDS)) return undefined;
  const recipient = data.recipient, severity = data.severity, reason = data.reason;
  if (!isText(recipient, MAX_TEXT_LENGTH) || !isText(severity, MAX_TEXT_LENGTH) || !isText(reason, MAX_TEXT_LENGTH)) {
    return undefined;
  }
  let messageId: string | null | undefined = undefined;
  const message = data.message;
  if (message !== undefined && message !== null) {
    if (!isRecord(message)) return undefined;
    const headers = message.headers;
    if (headers !== undefined && headers !== null) {
      if (!isRecord(headers)) return undefined;
      const header = headers["message-id"];
      if (!isText(header, MAX_MESSAGE_ID_LENGTH)) return undefined;
      messageId = header;
    }
  }
  const status = data["delivery-status"];
  if (status !== undefined && status !== null) {
    if (!isRecord(status)) return undefined;
    const code = status.code;
    if (code !== undefined && code !== null && typeof code !== "string" && !Number.isFinite(code)) return undefined;
  }
  const variables = data["user-variables"];
  if (
    variables !== undefined && variables !== null && typeof variables !== "string" && !Array.isArray(variables) &&
    !isRecord(variables)
  ) {
    return undefined;
  }
  return { timestamp, recipient, severity, reason, messageId };
}

/** A plain object, as JSON.parse makes them (the schema's objects and records refuse arrays and null). */
function isRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** Absent, null, or a string of at most `max` characters. */
function isText(value: unknown, max: number): value is string | null | undefined {
  return value === undefined || value === null || (typeof value === "string" && value.length <= max);
}
