/** How reading a request body can fail. */

/** The body is over the limit (declared or counted). */
export class BodyTooLargeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BodyTooLargeError";
  }
}

/** The body did not arrive whole within the timeout. */
export class SlowBodyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SlowBodyError";
  }
}

/** The body broke off (the client went away, or the stream failed). */
export class UnreadableBodyError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UnreadableBodyError";
  }
}
