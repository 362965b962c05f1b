/**
 * A local stand-in for Mailgun's Events API (`GET /v3/{domain}/events`),
 * served by Deno.serve on loopback: basic auth, the `event`, `begin` and
 * `end` filters (and `message-id`, when given), pages of `pageSize` items with a `paging.next`
 * URL on every page (the last page is empty, as Mailgun's is), and scripted
 * faults (429 with Retry-After, 5xx) for the next requests. `nextBase`
 * makes its next-page URLs point at another host.
 */
import { bareMessageId } from "../../src/mailgun/parse_event_data.ts";

/** A scripted answer for one coming request. */
export interface Fault {
  status: number;
  retryAfter?: string;
  /** Only for requests about this message id; any request when unset. */
  messageId?: string;
}

/** One request the fake received. */
export interface SeenRequest {
  path: string;
  messageId: string | null;
  params: URLSearchParams;
  status: number;
}

/** The running fake. */
export interface FakeMailgun {
  /** Its base URL, for MAILGUN_API_BASE_URL. */
  url: string;
  apiKey: string;
  domain: string;
  /** Adds events Mailgun knows. */
  add(...events: Record<string, unknown>[]): void;
  /** Answers the next matching requests with these faults, in order. */
  faults: Fault[];
  requests: SeenRequest[];
  close(): Promise<void>;
}

interface Cursor {
  messageId: string | null;
  events: string[];
  begin: number;
  end: number;
  offset: number;
}

/** Starts the fake on a free loopback port. */
export function startFakeMailgun(
  options: { pageSize?: number; domain?: string; nextBase?: string } = {},
): FakeMailgun {
  const pageSize = options.pageSize ?? 2;
  const domain = options.domain ?? "mg.comprobify.test";
  const apiKey = `key-${crypto.randomUUID()}`;
  const events: Record<string, unknown>[] = [];
  const faults: Fault[] = [];
  const requests: SeenRequest[] = [];
  let base = "";

  function json(status: number, body: unknown, headers: Record<string, string> = {}) {
    return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
  }

  function page(cursor: Cursor): Response {
    const matching = events
      .filter((event) => {
        const headers = (event.message as { headers: Record<string, string> }).headers;
        const timestamp = event.timestamp as number;
        return (cursor.messageId === null || bareMessageId(headers["message-id"]) === cursor.messageId) &&
          (cursor.events.length === 0 || cursor.events.includes(event.event as string)) &&
          timestamp >= cursor.begin && timestamp <= cursor.end;
      })
      .sort((a, b) => (a.timestamp as number) - (b.timestamp as number));
    const items = matching.slice(cursor.offset, cursor.offset + pageSize);
    const next = btoa(JSON.stringify({ ...cursor, offset: cursor.offset + items.length }));
    return json(200, {
      items,
      paging: {
        next: `${options.nextBase ?? base}/v3/${domain}/events/${encodeURIComponent(next)}`,
        previous: `${base}/v3/${domain}/events/previous`,
      },
    });
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const url = new URL(request.url);
    const seen: SeenRequest = { path: url.pathname, messageId: null, params: url.searchParams, status: 200 };
    requests.push(seen);
    const answer = (response: Response) => {
      seen.status = response.status;
      return response;
    };
    if (request.headers.get("authorization") !== `Basic ${btoa(`api:${apiKey}`)}`) {
      return answer(json(401, { message: "Invalid private key" }));
    }
    const match = /^\/v3\/([^/]+)\/events(?:\/([^/]+))?$/.exec(url.pathname);
    if (match === null || decodeURIComponent(match[1]) !== domain) {
      return answer(json(404, { message: "Domain not found" }));
    }
    let cursor: Cursor;
    if (match[2] !== undefined) {
      cursor = JSON.parse(atob(decodeURIComponent(match[2])));
    } else {
      const messageId = url.searchParams.get("message-id");
      cursor = {
        messageId: messageId === null ? null : bareMessageId(messageId),
        events: (url.searchParams.get("event") ?? "").split(" OR ").filter((event) => event !== ""),
        begin: Number(url.searchParams.get("begin") ?? 0),
        end: Number(url.searchParams.get("end") ?? Number.MAX_SAFE_INTEGER),
        offset: 0,
      };
    }
    seen.messageId = cursor.messageId;
    const fault = faults.findIndex((f) =>
      f.messageId === undefined || cursor.messageId === null || bareMessageId(f.messageId) === cursor.messageId
    );
    if (fault >= 0) {
      const [{ status, retryAfter }] = faults.splice(fault, 1);
      return answer(json(status, { message: "scripted fault" }, retryAfter ? { "retry-after": retryAfter } : {}));
    }
    return answer(page(cursor));
  });
  base = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  return {
    url: base,
    apiKey,
    domain,
    add: (...more) => void events.push(...more),
    faults,
    requests,
    close: () => server.shutdown(),
  };
}
