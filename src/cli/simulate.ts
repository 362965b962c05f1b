import { parseArgs } from "node:util";
import { z } from "zod";
import { readEnv } from "../config/read_env.ts";
import { SERVICE_VARIABLES } from "../config/service_config.ts";
import { buildEvent, isSimulatedKind, SIMULATED_KINDS } from "../simulate/build_event.ts";
import { postSimulatedEvent } from "../simulate/post_simulated_event.ts";
import { simulateSigningKey } from "../simulate/simulate_signing_key.ts";

const USAGE = `Usage: deno task simulate <${SIMULATED_KINDS.join("|")}> <message-id> [--url URL] [--recipient ADDRESS]

Builds the event Mailgun would send for <message-id>, signs it with MAILGUN_WEBHOOK_SIGNING_KEY
(or the development key in .pglite/dev-signing-key) and posts it to the running service.

  --url URL            the service (default http://127.0.0.1:$PORT, PORT defaulting to 8000)
  --recipient ADDRESS  the recipient the event names (default recipient@example.com)`;

/**
 * `deno task simulate`: like `stripe trigger`, sends one realistic, signed
 * Mailgun event to a running service and shows what it answered. Exits 0
 * only when the service answered 200.
 */
async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { url: { type: "string" }, recipient: { type: "string" }, help: { type: "boolean", short: "h" } },
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(USAGE);
    return 0;
  }
  const [kind, messageId] = parsed.positionals;
  if (kind === undefined || messageId === undefined || parsed.positionals.length > 2 || !isSimulatedKind(kind)) {
    console.error(kind !== undefined && !isSimulatedKind(kind) ? `Unknown event "${kind}".\n\n${USAGE}` : USAGE);
    return 2;
  }
  let baseUrl;
  let signing;
  try {
    const env = readEnv(z.object({
      PORT: SERVICE_VARIABLES.PORT,
      MAILGUN_WEBHOOK_SIGNING_KEY: SERVICE_VARIABLES.MAILGUN_WEBHOOK_SIGNING_KEY,
    }));
    baseUrl = parsed.values.url ?? `http://127.0.0.1:${env.PORT}`;
    signing = await simulateSigningKey(env.MAILGUN_WEBHOOK_SIGNING_KEY);
  } catch (error) {
    console.error((error as Error).message);
    return 1;
  }
  const eventData = buildEvent(kind, messageId, { recipient: parsed.values.recipient });
  const severity = "severity" in eventData ? ` (${eventData.severity})` : "";
  console.log(`Simulating ${eventData.event}${severity} for message ${eventData.message.headers["message-id"]}`);
  console.log(`  event id ${eventData.id}, signed with ${signing.source}`);
  let response;
  try {
    response = await postSimulatedEvent(baseUrl, signing.key, eventData);
  } catch (error) {
    console.error(
      `Could not reach ${baseUrl} (${
        (error as Error).message
      }). Is the service running? Start it with deno task start.`,
    );
    return 1;
  }
  console.log(`POST ${response.url}`);
  console.log(`${response.status} ${response.body}`);
  const outcome = outcomeOf(response.body);
  if (outcome !== undefined) console.log(`Outcome: ${outcome}${OUTCOMES[outcome] ? ` (${OUTCOMES[outcome]})` : ""}`);
  if (response.status === 401) {
    console.error("The service refused the signature: it verifies with another key than this one.");
  }
  return response.status === 200 ? 0 : 1;
}

/** What each outcome of a 200 means, for a newcomer reading the answer. */
const OUTCOMES: Record<string, string> = {
  applied: "recorded in the trail; the status moved as far as it may",
  duplicate: "already in the trail; nothing changed",
  unmatched: "no document or tenant has this message id; insert one first",
  ignored: "an event type this service does not track",
};

function outcomeOf(body: string): string | undefined {
  try {
    const outcome = JSON.parse(body)?.outcome;
    return typeof outcome === "string" ? outcome : undefined;
  } catch {
    return undefined;
  }
}

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
}
