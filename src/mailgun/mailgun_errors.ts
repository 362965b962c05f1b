/**
 * How a Mailgun webhook can be unusable, in Mailgun's terms. The HTTP edge
 * decides what each means to Mailgun (src/http/error_response.ts).
 */

/** The body is not the JSON document Mailgun sends. */
export class MalformedBodyError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "MalformedBodyError";
  }
}

/** The signature block is missing, malformed, out of its time window, or made with no configured key. */
export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignatureError";
  }
}

/** Signed, but the event-data can never be used (not an object, no event name, no usable timestamp, ...). */
export class UnusableEventError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UnusableEventError";
  }
}
