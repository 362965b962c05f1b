/**
 * A local stand-in for Mailgun's Logs API (`POST /v1/analytics/logs`),
 * served by Deno.serve on loopback, built from the shapes Mailgun documents:
 * basic auth `api:<key>`; a JSON query with `start`/`end` (RFC 2822),
 * `events`, a `filter` of `{"AND": [{"attribute": "domain", "comparator":
 * "=", "values": [{"label", "value"}]}]}` and `pagination` (`sort`,
 * `limit` of at most 100, `token`); an answer with `start`, `end`, `items`
 * (each with `id`, `event`, `@timestamp` in ISO 8601 to the millisecond,
 * `domain: {name}` and the event's other fields) and `pagination`
 * (`previous`, `next`, `first`, `last`, `total`). Whether the last page
 * carries a `next` token is not documented: by default every page has one
 * (the next page is then empty), `omitLastNext` drops it. Scripted faults
 * (429 with Retry-After, 5xx) answer the next requests.
 */

/** A scripted answer for one coming request. */
export interface LogsFault {
  status: number;
  retryAfter?: string;
}

/** One request the fake received. */
export interface SeenLogsRequest {
  body: Record<string, unknown>;
  status: number;
}

/** The running fake. */
export interface FakeMailgunLogs {
  /** Its base URL, for MAILGUN_API_BASE_URL. */
  url: string;
  apiKey: string;
  domain: string;
  /** Adds events Mailgun knows, given as webhook event-data (timestamp in seconds with microseconds). */
  add(...events: Record<string, unknown>[]): void;
  /** Forgets every event added so far. */
  clear(): void;
  /** Answers the next requests with these faults, in order. */
  faults: LogsFault[];
  requests: SeenLogsRequest[];
  close(): Promise<void>;
}

/** Mailgun's documented maximum page size for the Logs API. */
const MAX_LIMIT = 100;

/**
 * The Logs API's item for a webhook's event-data: no `timestamp`, but
 * `@timestamp` to the millisecond (truncated: whether Mailgun truncates or
 * rounds is not documented), and the domain as an object.
 */
export function asLogsItem(eventData: Record<string, unknown>, domain: string): Record<string, unknown> {
  const { timestamp, ...rest } = eventData;
  const ms = Math.floor((timestamp as number) * 1000);
  return { ...rest, "@timestamp": new Date(ms).toISOString(), domain: { name: domain } };
}

/** Starts the fake on a free loopback port; `pageSize` caps the query's limit. */
export function startFakeMailgunLogs(options: { pageSize?: number; omitLastNext?: boolean } = {}): FakeMailgunLogs {
  const domain = "mg.comprobify.test";
  const apiKey = `key-${crypto.randomUUID()}`;
  const items: Record<string, unknown>[] = [];
  const faults: LogsFault[] = [];
  const requests: SeenLogsRequest[] = [];

  function json(status: number, body: unknown, headers: Record<string, string> = {}) {
    return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
  }

  function answerQuery(query: Record<string, unknown>): Response {
    const start = Date.parse(String(query.start ?? ""));
    const end = Date.parse(String(query.end ?? ""));
    if (!/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$/.test(String(query.start)) || Number.isNaN(start)) {
      return json(400, { message: "start must be an RFC 2822 date" });
    }
    if (Number.isNaN(end)) return json(400, { message: "end must be an RFC 2822 date" });
    const pagination = (query.pagination ?? {}) as { sort?: string; limit?: number; token?: string };
    const limit = pagination.limit ?? 10;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
      return json(400, { message: `limit must be from 1 to ${MAX_LIMIT}` });
    }
    const size = Math.min(limit, options.pageSize ?? limit);
    const events = Array.isArray(query.events) ? query.events as string[] : [];
    const and = ((query.filter as { AND?: unknown[] } | undefined)?.AND ?? []) as {
      attribute: string;
      comparator: string;
      values: { value: string }[];
    }[];
    const domains = and.filter((f) => f.attribute === "domain" && f.comparator === "=")
      .flatMap((f) => f.values.map((v) => v.value));
    const matching = items
      .filter((item) => {
        const at = Date.parse(item["@timestamp"] as string);
        return at >= start && at <= end &&
          (events.length === 0 || events.includes(item.event as string)) &&
          (domains.length === 0 || domains.includes((item.domain as { name: string }).name));
      })
      .sort((a, b) => Date.parse(a["@timestamp"] as string) - Date.parse(b["@timestamp"] as string));
    if (pagination.sort === "timestamp:desc") matching.reverse();
    const offset = pagination.token === undefined ? 0 : Number(atob(pagination.token).split(":")[1]);
    const page = matching.slice(offset, offset + size);
    const last = offset + page.length >= matching.length;
    const token = (at: number) => btoa(`page:${at}`);
    return json(200, {
      start: query.start,
      end: query.end,
      items: page,
      pagination: {
        previous: token(Math.max(0, offset - size)),
        ...(last && options.omitLastNext ? {} : { next: token(offset + page.length) }),
        first: token(0),
        last: token(Math.max(0, matching.length - size)),
        total: matching.length,
      },
    });
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const seen: SeenLogsRequest = { body: {}, status: 200 };
    requests.push(seen);
    const answer = (response: Response) => {
      seen.status = response.status;
      return response;
    };
    const url = new URL(request.url);
    if (request.method !== "POST" || url.pathname !== "/v1/analytics/logs") return answer(json(404, {}));
    if (request.headers.get("authorization") !== `Basic ${btoa(`api:${apiKey}`)}`) {
      return answer(json(401, { message: "Invalid private key" }));
    }
    if (request.headers.get("content-type") !== "application/json") return answer(json(415, {}));
    try {
      seen.body = await request.json();
    } catch {
      return answer(json(400, { message: "body is not JSON" }));
    }
    const fault = faults.shift();
    if (fault !== undefined) {
      const headers: Record<string, string> = fault.retryAfter ? { "retry-after": fault.retryAfter } : {};
      return answer(json(fault.status, { message: "scripted fault" }, headers));
    }
    return answer(answerQuery(seen.body));
  });
  return {
    url: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
    apiKey,
    domain,
    add: (...more) => void items.push(...more.map((event) => asLogsItem(event, domain))),
    clear: () => void items.splice(0),
    faults,
    requests,
    close: () => server.shutdown(),
  };
}
