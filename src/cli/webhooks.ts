import { parseArgs } from "node:util";
import { ConfigError } from "../config/read_env.ts";
import { MAX_URLS_PER_WEBHOOK, REQUIRED_WEBHOOKS } from "../mailgun_setup/webhook_events.ts";
import { planWebhooks, problems, type WebhookPlanItem } from "../mailgun_setup/webhook_plan.ts";
import {
  createWebhooksClient,
  type RegisteredWebhooks,
  type WebhooksClient,
} from "../mailgun_setup/webhooks_client.ts";
import { loadWebhooksConfig } from "../mailgun_setup/webhooks_config.ts";
import { WebhooksApiError } from "../mailgun_setup/webhooks_errors.ts";

const USAGE =
  `Usage: deno task webhooks [--domain mg.example.com] [--url https://app.example.com] [--register | --check]

Lists, registers or checks the Mailgun webhooks this service needs on a domain: ${REQUIRED_WEBHOOKS.join(", ")},
each sending to <url>/v1/mailgun/webhook, through Mailgun's domain Webhooks API (v3).

  (no mode)    lists what is registered and what --register would change; changes nothing
  --register   adds this deployment's URL to each of the four that lacks it (--apply is the same); other URLs
               already on a webhook are kept (Mailgun allows ${MAX_URLS_PER_WEBHOOK}); nothing is ever removed
  --check      exits 1, naming them, when any of the four is missing or sends elsewhere; changes nothing
  --help       prints this and does nothing else

Needs MAILGUN_API_KEY (a private API key, never printed). --domain defaults to MAILGUN_DOMAIN, --url to
WEBHOOK_PUBLIC_URL. MAILGUN_REGION is us (default, https://api.mailgun.net) or eu (https://api.eu.mailgun.net);
MAILGUN_API_BASE_URL overrides it. Each request gives up after WEBHOOKS_REQUEST_TIMEOUT_MS (default 10000).`;

type Mode = "list" | "register" | "check";

/** `deno task webhooks`: Mailgun's side of the service. Exits 0 when done, 1 on a failed check or error, 2 on bad usage. */
async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        domain: { type: "string" },
        url: { type: "string" },
        register: { type: "boolean" },
        apply: { type: "boolean" },
        check: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const values = parsed.values;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const register = values.register === true || values.apply === true;
  if (register && values.check) {
    console.error(`--register and --check cannot be combined.\n\n${USAGE}`);
    return 2;
  }
  const mode: Mode = register ? "register" : values.check ? "check" : "list";
  let config;
  try {
    config = loadWebhooksConfig({ domain: values.domain, url: values.url });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`Configuration error: ${error.message}`);
    return 1;
  }
  const client = createWebhooksClient(config);
  console.log(`Mailgun webhooks of ${config.domain} (${config.baseUrl}), for ${config.webhookUrl}`);
  try {
    const registered = await client.list();
    const plan = planWebhooks(registered, config.webhookUrl);
    printPlan(plan, mode);
    printOthers(registered);
    if (mode === "register") return await registerAll(plan, client, config.webhookUrl);
    return mode === "check" ? reportCheck(plan) : reportList(plan);
  } catch (error) {
    if (!(error instanceof WebhooksApiError)) throw error;
    console.error(`Webhooks failed: ${error.message}`);
    return 1;
  }
}

async function registerAll(plan: WebhookPlanItem[], client: WebhooksClient, url: string): Promise<number> {
  let changed = 0;
  for (const item of plan) {
    if (item.action === "create") {
      await createOrReplace(client, item);
      console.log(`  created ${item.name}`);
      changed++;
    } else if (item.action === "update") {
      await client.update(item.name, item.newUrls);
      console.log(`  updated ${item.name} (kept ${others(item.urls.length)})`);
      changed++;
    }
  }
  // Read back what Mailgun now holds: the check is of Mailgun's state, not of what was sent.
  const after = planWebhooks(await client.list(), url);
  const left = problems(after);
  if (left.length > 0) {
    console.error(`Register incomplete: ${describe(left)}.`);
    for (const item of left.filter((item) => item.action === "full")) {
      console.error(
        `  ${item.name} already has the ${MAX_URLS_PER_WEBHOOK} URLs Mailgun allows: remove one in Mailgun ` +
          `(Send > Sending > Webhooks) and run this again.`,
      );
    }
    return 1;
  }
  console.log(
    changed === 0
      ? `Nothing to change: all ${REQUIRED_WEBHOOKS.length} webhooks send to ${url}.`
      : `Registered: ${changed} changed; all ${REQUIRED_WEBHOOKS.length} webhooks now send to ${url}.`,
  );
  return 0;
}

/**
 * Creates a webhook the list showed without URLs. Whether Mailgun keeps a
 * webhook whose URLs are all gone, so that a POST of it is refused as
 * existing, is not documented: then its URLs are replaced instead (PUT).
 */
async function createOrReplace(client: WebhooksClient, item: WebhookPlanItem): Promise<void> {
  try {
    await client.create(item.name, item.newUrls);
  } catch (error) {
    if (!(error instanceof WebhooksApiError) || (error.status !== 400 && error.status !== 409)) throw error;
    await client.update(item.name, item.newUrls);
  }
}

function printPlan(plan: WebhookPlanItem[], mode: Mode): void {
  const width = Math.max(...plan.map((item) => item.name.length));
  for (const item of plan) {
    const urls = item.urls.length === 0 ? "(no URL)" : item.urls.join(", ");
    const planned = mode === "check" ? "" : change(item, mode === "register" ? "" : "--register ");
    console.log(`  ${item.name.padEnd(width)}  ${item.state.padEnd(9)}  ${urls}${planned}`);
  }
}

/** The domain's other webhooks: listed so that nobody wonders where they went, never changed. */
function printOthers(registered: RegisteredWebhooks): void {
  const others = Object.entries(registered).filter(([name]) =>
    !(REQUIRED_WEBHOOKS as readonly string[]).includes(name)
  );
  if (others.length === 0) return;
  console.log(`  other webhooks on the domain (not used by this service, left as they are):`);
  for (const [name, urls] of others) console.log(`    ${name}: ${urls.join(", ")}`);
}

function change(item: WebhookPlanItem, who: string): string {
  switch (item.action) {
    case "create":
      return `  -> ${who}creates it with this URL`;
    case "update":
      return `  -> ${who}adds this URL (keeps ${others(item.urls.length)})`;
    case "full":
      return `  -> cannot add: already ${MAX_URLS_PER_WEBHOOK} URLs (remove one in Mailgun first)`;
    default:
      return "";
  }
}

function reportList(plan: WebhookPlanItem[]): number {
  const left = problems(plan);
  console.log(
    left.length === 0
      ? `All ${plan.length} webhooks send to this URL.`
      : `${left.length} of ${plan.length} webhooks need a change: run with --register to make it.`,
  );
  return 0;
}

function reportCheck(plan: WebhookPlanItem[]): number {
  const left = problems(plan);
  if (left.length === 0) {
    console.log(`Check passed: all ${plan.length} webhooks send to this URL.`);
    return 0;
  }
  console.error(`Check failed: ${describe(left)}. Run with --register to fix it.`);
  return 1;
}

function describe(items: WebhookPlanItem[]): string {
  return items
    .map((item) =>
      item.state === "missing" ? `${item.name} is missing` : `${item.name} points elsewhere (${item.urls.join(", ")})`
    )
    .join("; ");
}

function others(count: number): string {
  return count === 1 ? "1 other URL" : `${count} other URLs`;
}

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
}
