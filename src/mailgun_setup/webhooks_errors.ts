/**
 * Mailgun's Webhooks API answered with an error, or not at all. The message
 * names the request, the status and Mailgun's own message; never the key.
 */
export class WebhooksApiError extends Error {
  constructor(
    message: string,
    /** The HTTP status, or undefined when Mailgun did not answer. */
    readonly status: number | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "WebhooksApiError";
  }
}
