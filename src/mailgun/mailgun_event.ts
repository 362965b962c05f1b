/**
 * The shape of a Mailgun event, as this service reads it: one zod schema,
 * and the types inferred from it. It imports nothing of the service, so the
 * API (and its change-feed consumer) can import it to read the stored
 * event-data with the same rules.
 *
 * Only the fields the service reads (or the API may) are declared; Mailgun
 * promises only to add fields, so the others pass unchecked, and the
 * event-data is stored as it was sent, never as this schema's output.
 */
import { z } from "zod";

/** Event timestamps past 9999-12-31 are not times (PostgreSQL's timestamptz stops later, but nothing is sent then). */
export const MAX_EVENT_TIMESTAMP_SECONDS = 253402300799;
/** Longest event name: Mailgun's are a few words. */
export const MAX_EVENT_NAME_LENGTH = 64;
/** Longest event id: Mailgun's are 22 characters. */
export const MAX_EVENT_ID_LENGTH = 256;
/** Longest recipient, severity or reason kept. */
export const MAX_TEXT_LENGTH = 2048;
/** RFC 5322's line limit bounds a Message-ID header. */
export const MAX_MESSAGE_ID_LENGTH = 998;
/** Unix seconds sent as a string, with an optional fraction (no sign, no exponent). */
const TIMESTAMP_TEXT = /^\d+(\.\d+)?$/;

const TIMESTAMP_PROBLEM =
  `expected Unix seconds (a number or a decimal string) from 0 to ${MAX_EVENT_TIMESTAMP_SECONDS}.`;

/** Absent and null both mean "not given". */
const optionalText = (max: number) => z.string().max(max).nullish();

/** Seconds with a fraction, as Mailgun sends it (a float), or the same as a decimal string; read as a number. */
const eventTimestamp = z
  .union([z.number(), z.string().regex(TIMESTAMP_TEXT).transform(Number)], { error: TIMESTAMP_PROBLEM })
  // Infinity (a string of 400 digits) and values out of range get the same one message.
  .pipe(
    z.number({ error: TIMESTAMP_PROBLEM })
      .min(0, { error: TIMESTAMP_PROBLEM })
      .max(MAX_EVENT_TIMESTAMP_SECONDS, { error: TIMESTAMP_PROBLEM }),
  );

/**
 * A Mailgun event the service tracks (delivered, failed, complained), with
 * the variations real payloads have: `timestamp` a number or a numeric
 * string; `id` missing or null (both mean "no id"); `message` or its
 * `headers` missing, null or empty (a delayed bounce: nothing to match);
 * `delivery-status` null, its `code` a number or a string; `user-variables`
 * an object, an array (`[]`) or the JSON text of one (kept as text).
 */
export const mailgunEventSchema = z.object({
  event: z.string().min(1).max(MAX_EVENT_NAME_LENGTH),
  id: z.string().min(1).max(MAX_EVENT_ID_LENGTH).nullish(),
  timestamp: eventTimestamp,
  recipient: optionalText(MAX_TEXT_LENGTH),
  severity: optionalText(MAX_TEXT_LENGTH),
  reason: optionalText(MAX_TEXT_LENGTH),
  message: z.object({
    headers: z.object({ "message-id": optionalText(MAX_MESSAGE_ID_LENGTH) }).nullish(),
  }).nullish(),
  "delivery-status": z.object({
    code: z.union([z.number(), z.string()], { error: "expected a number or a string." }).nullish(),
  }).nullish(),
  "user-variables": z
    .union([z.record(z.string(), z.unknown()), z.array(z.unknown()), z.string()], {
      error: "expected an object, an array or JSON text.",
    })
    .nullish(),
});

/** What every event needs, tracked or ignored (opened, clicked, ...): a name, and an id if it has one. */
export const mailgunEventIdentitySchema = mailgunEventSchema.pick({ event: true, id: true });

/** A tracked event's fields besides its name and id, checked once the name says it is tracked. */
export const mailgunTrackedFieldsSchema = mailgunEventSchema.omit({ event: true, id: true });

/** A tracked Mailgun event as read: `timestamp` is a number, whichever form it was sent in. */
export type MailgunEvent = z.output<typeof mailgunEventSchema>;

/** A tracked Mailgun event as Mailgun may send it (`timestamp` a number or a numeric string). */
export type MailgunEventInput = z.input<typeof mailgunEventSchema>;

/** The name and id of any Mailgun event. */
export type MailgunEventIdentity = z.output<typeof mailgunEventIdentitySchema>;
