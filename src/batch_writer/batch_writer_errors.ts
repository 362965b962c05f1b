/** Why the batch writer did not write a row: it sheds load rather than memory or time. */

/** Too many rows are waiting already; this one was not queued. */
export class QueueFullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QueueFullError";
  }
}

/** The row waited (queue plus statement) longer than its deadline; it may or may not be written. */
export class DeadlineExceededError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DeadlineExceededError";
  }
}
