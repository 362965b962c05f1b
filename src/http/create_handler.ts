import type { Sql } from "postgres";
import { schemaStatus } from "../db/schema_status.ts";
import { log } from "../log.ts";
import { recordWebhook } from "../telemetry.ts";
import { jsonResponse } from "./errors.ts";
import { handleWebhook, type WebhookDeps, type WebhookResult } from "./handle_webhook.ts";

/** The webhook's path, as registered in Mailgun. */
export const WEBHOOK_PATH = "/v1/mailgun/webhook";
/** The health check's path. */
export const HEALTH_PATH = "/healthz";

/** What the HTTP handler needs. */
export interface HandlerDeps extends WebhookDeps {
  sql: Sql;
  healthTimeoutMs: number;
  /** The migrations the service ships: /healthz is 503 until all are applied. */
  migrations: string[];
}

/** Routes requests: the webhook, the health check, 404 and 405. */
export function createHandler(deps: HandlerDeps): (request: Request) => Promise<Response> {
  return async (request) => {
    const pathname = pathOf(request.url);
    if (pathname === WEBHOOK_PATH) {
      if (request.method !== "POST") return methodNotAllowed("POST");
      const started = performance.now();
      const result = await handleWebhook(request, deps);
      const durationMs = performance.now() - started;
      logWebhook(result, durationMs);
      recordWebhook(result, durationMs);
      if (result.status === 200) {
        // `duplicate: true` stays beside the outcome: clients (and the fault suite) read it.
        const duplicate = result.outcome === "duplicate" ? { duplicate: true } : {};
        return jsonResponse(200, { ok: true, outcome: result.outcome, ...duplicate });
      }
      return jsonResponse(result.status, { ok: false, error: result.message });
    }
    if (pathname === HEALTH_PATH) {
      if (request.method !== "GET" && request.method !== "HEAD") return methodNotAllowed("GET, HEAD");
      const schema = await schemaStatus(deps.sql, deps.migrations, deps.healthTimeoutMs);
      if (schema.state === "behind") {
        return jsonResponse(503, {
          ok: false,
          database: "unmigrated",
          error: "The database schema is missing or behind: run deno task migrate.",
        });
      }
      const up = schema.state === "current";
      return jsonResponse(up ? 200 : 503, { ok: up, database: up ? "up" : "down" });
    }
    return jsonResponse(404, { ok: false, error: "Not found." });
  };
}

/** The path of an absolute URL, without parsing the whole URL (this runs for every webhook). */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const query = url.indexOf("?", start);
  return url.slice(start, query < 0 ? undefined : query);
}

function methodNotAllowed(allow: string): Response {
  return jsonResponse(405, { ok: false, error: "Method not allowed." }, { allow });
}

/** One line per webhook. Never the key, never a recipient address. */
function logWebhook(result: WebhookResult, durationMs: number): void {
  const level = result.status === 200 ? "info" : result.status >= 500 ? "error" : "warn";
  log(level, "webhook", {
    outcome: result.outcome,
    status: result.status,
    event_id: result.eventId,
    event: result.event,
    rows: result.rows,
    signing_key_index: result.keyIndex,
    parent_key: result.parentKey,
    reason: result.status === 200 ? undefined : result.message,
    error_code: result.error?.errorCode,
    error_message: result.error?.errorMessage,
    hint: result.error?.hint,
    bug: result.error?.bug,
    stack: result.error?.stack,
    duration_ms: Math.round(durationMs * 100) / 100,
  });
}
