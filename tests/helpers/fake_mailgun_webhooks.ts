/**
 * A local stand-in for Mailgun's domain Webhooks API (v3), served by
 * Deno.serve on loopback, built from the shapes Mailgun's API reference
 * documents ("Domain Webhooks"):
 *
 * - basic auth `api:<key>`, else `401 {"message": ...}`;
 * - `GET /v3/domains/{domain}/webhooks`: `200 {"webhooks": {"<name>": {"urls": [...]}}}`;
 * - `POST /v3/domains/{domain}/webhooks`, a form (`multipart/form-data` as
 *   documented, or urlencoded) with `id` (one of the documented names) and
 *   `url` (1 to 3): `200 {"message", "webhook": {"urls"}}`;
 * - `PUT /v3/domains/{domain}/webhooks/{name}`, a form with `url` (1 to 3),
 *   replacing the URLs: the same answer;
 * - an unknown domain: `404 {"message"}`; a bad form: `400 {"Reason"}`.
 *
 * Inferred, not documented: POST on a webhook that exists and PUT on one
 * that does not are refused (400 and 404); whether a webhook can exist
 * without URLs, and how the list shows webhooks never set, are not
 * documented either (the reference's example lists all eight, as `{}`):
 * `listUnset` shows them so.
 */

/** The names Mailgun's reference lists for domain webhooks. */
const NAMES = [
  "accepted",
  "clicked",
  "opened",
  "unsubscribed",
  "delivered",
  "permanent_fail",
  "temporary_fail",
  "complained",
];

/** One request the fake received. */
export interface SeenWebhooksRequest {
  method: string;
  path: string;
  contentType: string;
  /** The form's fields, in order (repeated names kept). */
  fields: [string, string][];
  status: number;
}

/** The running fake. */
export interface FakeMailgunWebhooks {
  /** Its base URL, for MAILGUN_API_BASE_URL. */
  url: string;
  apiKey: string;
  domain: string;
  /**
   * The domain's webhooks: name to URLs. Tests set and read it directly; a
   * name with no URLs is a webhook that exists without any (listed as
   * `{"urls": []}`, refused by POST as existing).
   */
  webhooks: Map<string, string[]>;
  requests: SeenWebhooksRequest[];
  close(): Promise<void>;
}

/** Starts the fake on a free loopback port. */
export function startFakeMailgunWebhooks(
  options: { domain?: string; listUnset?: boolean } = {},
): FakeMailgunWebhooks {
  const domain = options.domain ?? "mg.comprobify.test";
  const apiKey = `key-${crypto.randomUUID()}`;
  const webhooks = new Map<string, string[]>();
  const requests: SeenWebhooksRequest[] = [];
  const json = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  const collection = `/v3/domains/${domain}/webhooks`;

  function list(): Response {
    const body: Record<string, { urls?: string[] }> = {};
    for (const name of NAMES) {
      const urls = webhooks.get(name);
      if (urls !== undefined) body[name] = { urls };
      else if (options.listUnset) body[name] = {};
    }
    return json(200, { webhooks: body });
  }

  function checkUrls(urls: string[]): Response | undefined {
    if (urls.length === 0) return json(400, { Reason: "url is required" });
    if (urls.length > 3) return json(400, { Reason: "a maximum of 3 urls is allowed" });
    if (urls.some((url) => !/^https?:\/\/\S+$/.test(url))) return json(400, { Reason: "url is invalid" });
  }

  async function handle(request: Request, seen: SeenWebhooksRequest): Promise<Response> {
    if (request.headers.get("authorization") !== `Basic ${btoa(`api:${apiKey}`)}`) {
      return json(401, { message: "Invalid private key" });
    }
    const path = decodeURIComponent(seen.path);
    if (!path.startsWith("/v3/domains/")) return json(404, { message: "Not found" });
    if (!path.startsWith(`${collection}`)) return json(404, { message: "Domain not found" });
    const rest = path.slice(collection.length);
    if (request.method === "GET" && rest === "") return list();
    if (request.method !== "POST" && request.method !== "PUT") return json(405, { message: "Method not allowed" });
    if (!/^(multipart\/form-data; *boundary=|application\/x-www-form-urlencoded)/.test(seen.contentType)) {
      return json(400, { Reason: "expected a form (multipart/form-data)" });
    }
    let form: FormData;
    try {
      form = await request.formData();
    } catch {
      return json(400, { Reason: "the form could not be read" });
    }
    for (const [name, value] of form.entries()) seen.fields.push([name, String(value)]);
    const urls = form.getAll("url").map(String);
    if (request.method === "POST" && rest === "") {
      const id = String(form.get("id") ?? "");
      if (!NAMES.includes(id)) return json(400, { Reason: `id must be one of ${NAMES.join(", ")}` });
      const bad = checkUrls(urls);
      if (bad) return bad;
      if (webhooks.has(id)) return json(400, { Reason: `webhook ${id} already exists` });
      webhooks.set(id, urls);
      return json(200, { message: "Webhook has been created", webhook: { urls } });
    }
    const name = rest.slice(1);
    if (request.method === "PUT" && NAMES.includes(name)) {
      if (form.has("id")) return json(400, { Reason: "id belongs in the path" });
      const bad = checkUrls(urls);
      if (bad) return bad;
      if (!webhooks.has(name)) return json(404, { message: "Webhook not found" });
      webhooks.set(name, urls);
      return json(200, { message: "Webhook has been updated", webhook: { urls } });
    }
    return json(404, { message: "Not found" });
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const seen: SeenWebhooksRequest = {
      method: request.method,
      path: new URL(request.url).pathname,
      contentType: request.headers.get("content-type") ?? "",
      fields: [],
      status: 0,
    };
    requests.push(seen);
    const response = await handle(request, seen);
    seen.status = response.status;
    return response;
  });
  return {
    url: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
    apiKey,
    domain,
    webhooks,
    requests,
    close: () => server.shutdown(),
  };
}

/**
 * A loopback port that accepts connections and never answers: for a bound
 * on a request. `close` drops the held connections and stops listening.
 */
export function startSilentServer(): { url: string; connections: () => number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    try {
      for await (const conn of listener) held.push(conn);
    } catch {
      // Closed.
    }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    connections: () => held.length,
    close() {
      for (const conn of held) {
        try {
          conn.close();
        } catch {
          // Already closed by the client.
        }
      }
      listener.close();
    },
  };
}
