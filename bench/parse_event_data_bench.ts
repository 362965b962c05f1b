/**
 * `deno bench bench/parse_event_data_bench.ts`: what checking one event-data
 * costs, on Mailgun's own example payloads (tests/payloads/, read at run
 * time), plus an event with its timestamp sent as text, one without an id,
 * an ignored event and a refused one (a 406 builds its message from the
 * first issue). Needs only --allow-read.
 */
import { parseEventData } from "../src/mailgun/parse_event_data.ts";

const PAYLOADS = new URL("../tests/payloads/", import.meta.url);

function payload(name: string): Record<string, unknown> {
  return JSON.parse(Deno.readTextFileSync(new URL(`${name}.event-data.json`, PAYLOADS)));
}

const delivered = payload("delivered");
const cases: [string, Record<string, unknown>][] = [
  ["delivered", delivered],
  ["failed-permanent", payload("failed-permanent")],
  ["failed-temporary", payload("failed-temporary")],
  ["complained", payload("complained")],
  ["delivered, timestamp as text", { ...delivered, timestamp: String(delivered.timestamp) }],
  ["opened (ignored)", { ...delivered, event: "opened" }],
];

for (const [name, data] of cases) {
  Deno.bench({ name, group: "parse", baseline: name === "delivered", fn: () => void parseEventData(data) });
}

const refused = { ...delivered, timestamp: "soon" };
Deno.bench({
  name: "refused (timestamp)",
  group: "parse",
  fn: () => {
    try {
      parseEventData(refused);
    } catch {
      // The 406 path: the error and its message are part of the cost.
    }
  },
});
