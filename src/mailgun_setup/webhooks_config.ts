import { z } from "zod";
import { choiceVariable, textVariable, wholeNumberVariable } from "../config/env_variables.ts";
import { ConfigError, type EnvSource, readEnv } from "../config/read_env.ts";
import { MAILGUN_API_BASE_URLS } from "../reconcile/mailgun_event_source.ts";
import { webhookUrlFor } from "./webhook_events.ts";

/** What `deno task webhooks` needs. */
export interface WebhooksConfig {
  apiKey: string;
  domain: string;
  /** Mailgun's API host, e.g. https://api.mailgun.net. */
  baseUrl: string;
  /** The URL Mailgun must post to: this deployment's base URL and the webhook's route. */
  webhookUrl: string;
  /** Bound on each request to Mailgun. */
  timeoutMs: number;
}

/** The variables `deno task webhooks` reads; the domain and URL may come from flags instead. */
const webhooksVariables = z.object({
  MAILGUN_API_KEY: z.string({
    error: "is required (Mailgun > API security > a private API key; not the webhook signing key).",
  }),
  MAILGUN_DOMAIN: textVariable(),
  MAILGUN_REGION: choiceVariable(["us", "eu"]),
  MAILGUN_API_BASE_URL: z.string().regex(/^https?:\/\/[^/]+\/?$/, {
    error: "must be a scheme and host, e.g. https://api.mailgun.net.",
  }).optional(),
  WEBHOOK_PUBLIC_URL: textVariable(),
  WEBHOOKS_REQUEST_TIMEOUT_MS: wholeNumberVariable(10_000, 100, 120_000),
});

/**
 * Reads the settings of `deno task webhooks`: MAILGUN_API_KEY, the domain
 * (`--domain`, else MAILGUN_DOMAIN), MAILGUN_REGION (`us` or `eu`) or
 * MAILGUN_API_BASE_URL (overrides the region), this deployment's base URL
 * (`--url`, else WEBHOOK_PUBLIC_URL) and WEBHOOKS_REQUEST_TIMEOUT_MS.
 * Throws a {@link ConfigError} naming the first bad setting.
 */
export function loadWebhooksConfig(
  flags: { domain?: string; url?: string } = {},
  source?: EnvSource,
): WebhooksConfig {
  const env = readEnv(webhooksVariables, source);
  const domain = flags.domain?.trim() || env.MAILGUN_DOMAIN;
  if (domain === undefined || !/^[a-z0-9.-]+$/i.test(domain)) {
    throw new ConfigError(
      `--domain (or MAILGUN_DOMAIN) must be your sending domain, e.g. mg.example.com (got "${domain ?? ""}").`,
    );
  }
  const baseUrl = env.MAILGUN_API_BASE_URL ?? MAILGUN_API_BASE_URLS[env.MAILGUN_REGION ?? "us"];
  const base = flags.url?.trim() || env.WEBHOOK_PUBLIC_URL;
  if (base === undefined) {
    throw new ConfigError(
      "--url (or WEBHOOK_PUBLIC_URL) is required: this deployment's public base URL, e.g. https://app.example.com.",
    );
  }
  const webhookUrl = webhookUrlFor(base);
  if (webhookUrl === undefined) {
    // A URL with credentials is not echoed: they would end up in a terminal's scrollback or a CI log.
    const shown = base.includes("@") ? "a URL with credentials" : `"${base}"`;
    throw new ConfigError(
      `--url (or WEBHOOK_PUBLIC_URL) must be an https URL without query or credentials, e.g. https://app.example.com (got ${shown}).`,
    );
  }
  return {
    apiKey: env.MAILGUN_API_KEY,
    domain,
    baseUrl: baseUrl.replace(/\/+$/, ""),
    webhookUrl,
    timeoutMs: env.WEBHOOKS_REQUEST_TIMEOUT_MS,
  };
}
