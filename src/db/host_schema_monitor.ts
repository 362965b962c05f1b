import type { Sql } from "postgres";
import { log } from "../reporting/log.ts";
import { withTimeout } from "./with_timeout.ts";
import { describeProblem, findHostSchemaProblems, type HostSchemaProblem } from "./find_host_schema_problems_query.ts";

/** Start-up refused: the API's schema would refuse statuses the service writes. */
export class HostSchemaProblemsError extends Error {
  readonly problems: HostSchemaProblem[];
  constructor(problems: HostSchemaProblem[]) {
    super(
      "The API's schema would refuse statuses the service writes (webhooks would be answered 503):\n" +
        problems.map((problem) => `  - ${describeProblem(problem)}`).join("\n"),
    );
    this.name = "HostSchemaProblemsError";
    this.problems = problems;
  }
}

/**
 * For `deno task migrate`, before it applies anything: throws a
 * {@link HostSchemaProblemsError} listing what would refuse statuses; tells
 * `warn` what cannot be verified.
 */
export async function assertHostSchemaAccepts(sql: Sql, warn: (line: string) => void): Promise<void> {
  const problems = await findHostSchemaProblems(sql);
  for (const problem of problems) {
    if (problem.severity !== "refuses") warn(`Warning: ${describeProblem(problem)}`);
  }
  const refusing = refusingOf(problems);
  if (refusing.length > 0) throw new HostSchemaProblemsError(refusing);
}

/** The last answer of the host schema check, kept so that /healthz (polled) stays cheap. */
export interface HostSchemaMonitor {
  /**
   * The problems that refuse webhooks, as last checked; checked again when the
   * answer is older than `maxAgeMs` or the database has not answered yet.
   * Undefined while the database does not answer.
   */
  refusing(): Promise<HostSchemaProblem[] | undefined>;
  /**
   * A webhook was refused by the schema, which changed since the last check:
   * checks again now, unless this ran less than `refusalRecheckMs` ago.
   */
  afterRefusal(): void;
}

/**
 * Checks the API's schema at most every `maxAgeMs` (one check at a time),
 * logging each problem at error level (warnings at warn level) when what is
 * found changes, and once at info level when they are gone.
 */
export function createHostSchemaMonitor(
  sql: Sql,
  options: { maxAgeMs: number; refusalRecheckMs: number; timeoutMs: number },
): HostSchemaMonitor {
  let last: { problems: HostSchemaProblem[]; at: number } | undefined;
  let running: Promise<HostSchemaProblem[] | undefined> | undefined;
  let said = "[]";
  let lastRefusalCheck = -Infinity;

  function checkOnce(): Promise<HostSchemaProblem[] | undefined> {
    running ??= check().finally(() => {
      running = undefined;
    });
    return running;
  }

  async function check(): Promise<HostSchemaProblem[] | undefined> {
    try {
      const problems = await withTimeout(
        findHostSchemaProblems(sql),
        options.timeoutMs,
        () => new Error(`Database did not answer within ${options.timeoutMs} ms.`),
      );
      last = { problems, at: Date.now() };
      const now = JSON.stringify(problems);
      if (now !== said) {
        for (const problem of problems) {
          log(problem.severity === "refuses" ? "error" : "warn", "host schema problem", {
            table: problem.table,
            column: problem.column,
            constraint: problem.constraint,
            problem: problem.problem,
            fix: problem.fix,
          });
        }
        if (problems.length === 0) log("info", "host schema problems are gone");
        said = now;
      }
      return refusingOf(problems);
    } catch {
      // The database does not answer (or not yet): asked again at the next call.
      return undefined;
    }
  }

  return {
    refusing() {
      if (last !== undefined && Date.now() - last.at < options.maxAgeMs) {
        return Promise.resolve(refusingOf(last.problems));
      }
      return checkOnce();
    },
    afterRefusal() {
      if (Date.now() - lastRefusalCheck < options.refusalRecheckMs) return;
      lastRefusalCheck = Date.now();
      void checkOnce();
    },
  };
}

function refusingOf(problems: HostSchemaProblem[]): HostSchemaProblem[] {
  return problems.filter((problem) => problem.severity === "refuses");
}
