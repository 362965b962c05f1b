import type { Sql } from "postgres";
import type { HostSchemaMonitor } from "../db/host_schema_monitor.ts";
import { schemaStatus } from "../db/schema_status.ts";
import { findStandInTables } from "../db/stand_in_tables_query.ts";
import { HEALTH_PATH, WEBHOOK_PATH } from "../config/routes.ts";
import { reportWebhook } from "../reporting/report_webhook.ts";
import type { Outcome } from "../reporting/webhook_report.ts";
import { jsonResponse } from "./error_response.ts";
import { handleWebhook, type WebhookDeps } from "./handle_webhook.ts";

/** What the HTTP handler needs. */
interface HandlerDeps extends WebhookDeps {
  sql: Sql;
  healthTimeoutMs: number;
  /** The migrations the service ships: /healthz is 503 until all are applied. */
  migrations: string[];
  /** /healthz is 503 while the API's schema refuses statuses the service writes. */
  hostSchema: HostSchemaMonitor;
}

/** Routes requests: the webhook, the health check, 404 and 405. */
export function createHandler(deps: HandlerDeps): (request: Request) => Promise<Response> {
  return async (request) => {
    const pathname = pathOf(request.url);
    if (pathname === WEBHOOK_PATH) {
      if (request.method !== "POST") return methodNotAllowed("POST");
      const started = performance.now();
      const report = await handleWebhook(request, deps);
      reportWebhook(report, performance.now() - started);
      if (report.status === 200) return okResponse(report.outcome);
      return jsonResponse(report.status, { ok: false, error: report.message });
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
      if (schema.state === "down") return jsonResponse(503, { ok: false, database: "down" });
      if (((await deps.hostSchema.refusing())?.length ?? 0) > 0) {
        return jsonResponse(503, {
          ok: false,
          database: "host schema refuses statuses",
          error: "The API's schema refuses statuses the service writes: see the log's host schema problem lines.",
        });
      }
      // Whether documents and tenants were found or created by our migration: stand-ins mean the wrong database.
      let standIns: string[];
      try {
        standIns = await findStandInTables(deps.sql, deps.healthTimeoutMs);
      } catch {
        return jsonResponse(503, { ok: false, database: "down" });
      }
      return jsonResponse(200, { ok: true, database: "up", host_tables: standIns.length === 0 ? "found" : "stand-in" });
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

/**
 * The 200 answers, one body per outcome, serialised once: `duplicate: true`
 * stays beside the outcome, as clients (and the fault suite) read it.
 */
const OK_BODIES: Partial<Record<Outcome, string>> = Object.fromEntries(
  (["applied", "duplicate", "unmatched", "ignored"] as const).map((outcome) => [
    outcome,
    JSON.stringify({ ok: true, outcome, ...(outcome === "duplicate" ? { duplicate: true } : {}) }),
  ]),
);

function okResponse(outcome: Outcome): Response {
  const body = OK_BODIES[outcome];
  if (body === undefined) return jsonResponse(200, { ok: true, outcome });
  return new Response(body, { status: 200, headers: { "content-type": "application/json" } });
}
