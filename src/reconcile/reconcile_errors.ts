/** Mailgun answered something that retrying cannot fix, or kept failing. */
export class MailgunApiError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    /** True when retrying later cannot help either (wrong key, unknown domain, a next page on another host). */
    readonly fatal: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "MailgunApiError";
  }
}

/** The error for a status Mailgun answered that is not a page. */
export function mailgunStatusError(status: number, domain: string): MailgunApiError {
  if (status === 401 || status === 403) {
    return new MailgunApiError(
      `Mailgun refused the API key (${status}): check MAILGUN_API_KEY (a private API key, not the webhook signing key) and MAILGUN_REGION.`,
      status,
      true,
    );
  }
  if (status === 404) {
    return new MailgunApiError(
      `Mailgun does not know the domain ${domain} in this region (404): check MAILGUN_DOMAIN and MAILGUN_REGION.`,
      status,
      true,
    );
  }
  if (status === 429 || status >= 500) {
    return new MailgunApiError(`Mailgun answered ${status} after every retry.`, status, false);
  }
  return new MailgunApiError(`Mailgun answered ${status}.`, status, false);
}
