/**
 * A client of Mailgun's domain Webhooks API (v3), as documented in its API
 * reference ("Domain Webhooks"):
 *
 * - `GET /v3/domains/{domain}/webhooks` answers `{"webhooks": {"<name>": {"urls": [...]}, ...}}`;
 * - `POST /v3/domains/{domain}/webhooks` creates one webhook from the form
 *   fields `id` (its name) and `url` (repeated, at most 3);
 * - `PUT /v3/domains/{domain}/webhooks/{name}` replaces its URLs by the
 *   repeated `url` fields;
 *
 * all with basic auth `api:<private API key>`. Errors carry `message` (401,
 * 404) or `Reason` (400). Every request is bounded by `timeoutMs`.
 */
import { WebhooksApiError } from "./webhooks_errors.ts";

/** Where and how to reach Mailgun. */
export interface WebhooksClientOptions {
  /** E.g. https://api.mailgun.net (US) or https://api.eu.mailgun.net (EU). */
  baseUrl: string;
  apiKey: string;
  domain: string;
  /** Bound on each request, body included. */
  timeoutMs: number;
}

/** The URLs registered on each webhook of the domain; a webhook without any is absent. */
export type RegisteredWebhooks = Record<string, string[]>;

/** The domain's webhooks, read and written through Mailgun's API. */
export interface WebhooksClient {
  /** The webhooks registered on the domain. Throws a WebhooksApiError. */
  list(): Promise<RegisteredWebhooks>;
  /** Creates the webhook `name` with these URLs (it must not exist). Throws a WebhooksApiError. */
  create(name: string, urls: string[]): Promise<void>;
  /** Replaces the URLs of the existing webhook `name`. Throws a WebhooksApiError. */
  update(name: string, urls: string[]): Promise<void>;
}

/** A client for the domain of `options`. */
export function createWebhooksClient(options: WebhooksClientOptions): WebhooksClient {
  const base = options.baseUrl.replace(/\/+$/, "");
  const domainPath = `/v3/domains/${encodeURIComponent(options.domain)}/webhooks`;
  const authorization = `Basic ${btoa(`api:${options.apiKey}`)}`;

  async function send(method: string, path: string, body?: FormData): Promise<unknown> {
    const what = `${method} ${path}`;
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${base}${path}`, {
        method,
        headers: { authorization, accept: "application/json" },
        body,
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      throw networkError(error, what, base, options.timeoutMs);
    }
    if (!response.ok) throw statusError(response.status, text, what, options.domain);
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new WebhooksApiError(`Mailgun answered ${what} with a body that is not JSON.`, response.status, {
        cause: error,
      });
    }
  }

  function form(fields: [string, string][]): FormData {
    const data = new FormData();
    for (const [name, value] of fields) data.append(name, value);
    return data;
  }

  return {
    async list() {
      return parseWebhookList(await send("GET", domainPath));
    },
    async create(name, urls) {
      await send("POST", domainPath, form([["id", name], ...urls.map((url): [string, string] => ["url", url])]));
    },
    async update(name, urls) {
      await send(
        "PUT",
        `${domainPath}/${encodeURIComponent(name)}`,
        form(urls.map((url): [string, string] => ["url", url])),
      );
    },
  };
}

/**
 * The URLs of each webhook in a list answer. Each webhook is `{"urls": [...]}`;
 * an older shape `{"url": "..."}` (kept by Mailgun's SDKs) is read too, and
 * a webhook with no URL (`{}`, as in the reference's example) is left out.
 */
export function parseWebhookList(body: unknown): RegisteredWebhooks {
  const webhooks = (body as { webhooks?: unknown } | null)?.webhooks;
  if (typeof webhooks !== "object" || webhooks === null || Array.isArray(webhooks)) {
    throw new WebhooksApiError("Mailgun answered the list of webhooks without a webhooks object.", 200);
  }
  const registered: RegisteredWebhooks = {};
  for (const [name, value] of Object.entries(webhooks)) {
    const { urls, url } = (value ?? {}) as { urls?: unknown; url?: unknown };
    const found = Array.isArray(urls) ? urls.filter((u): u is string => typeof u === "string") : [];
    if (found.length === 0 && typeof url === "string" && url !== "") found.push(url);
    if (found.length > 0) registered[name] = found;
  }
  return registered;
}

/** Mailgun's own words from an error body (`message`, `Reason` or plain text), short and on one line. */
function mailgunMessage(text: string): string {
  let message = text;
  try {
    const body = JSON.parse(text) as Record<string, unknown> | null;
    const field = body?.message ?? body?.Reason ?? body?.reason ?? body?.error;
    if (typeof field === "string") message = field;
  } catch {
    // Not JSON: Mailgun answers some errors (a refused key) in plain text.
  }
  // deno-lint-ignore no-control-regex
  const line = message.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  return line.length > 200 ? `${line.slice(0, 200)}...` : line;
}

function statusError(status: number, text: string, what: string, domain: string): WebhooksApiError {
  const said = mailgunMessage(text);
  const answered = `Mailgun answered ${what} with ${status}${said === "" ? "" : ` (${said})`}`;
  if (status === 401 || status === 403) {
    return new WebhooksApiError(
      `${answered}: it refused the API key. Check MAILGUN_API_KEY (a private API key, not the webhook signing key) ` +
        `and the region (MAILGUN_REGION or MAILGUN_API_BASE_URL).`,
      status,
    );
  }
  if (status === 404 && what.startsWith("GET")) {
    return new WebhooksApiError(
      `${answered}: it does not know the domain ${domain} in this region. Check --domain (MAILGUN_DOMAIN) and ` +
        `the region (MAILGUN_REGION or MAILGUN_API_BASE_URL).`,
      status,
    );
  }
  if (status === 429) return new WebhooksApiError(`${answered}: too many requests; try again in a minute.`, status);
  return new WebhooksApiError(`${answered}.`, status);
}

function networkError(error: unknown, what: string, base: string, timeoutMs: number): WebhooksApiError {
  const host = URL.canParse(base) ? new URL(base).host : base;
  if (error instanceof DOMException && (error.name === "TimeoutError" || error.name === "AbortError")) {
    return new WebhooksApiError(
      `Mailgun (${host}) did not answer ${what} within ${timeoutMs / 1000} s (WEBHOOKS_REQUEST_TIMEOUT_MS); ` +
        `nothing more was sent.`,
      undefined,
      { cause: error },
    );
  }
  return new WebhooksApiError(
    `Could not reach Mailgun at ${host} for ${what}: ${(error as Error).message}`,
    undefined,
    {
      cause: error,
    },
  );
}
