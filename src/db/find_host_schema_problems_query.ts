import type { Sql } from "postgres";

/**
 * The statuses the service writes into the API's `email_status` columns (SENT
 * is the API's own: the service never writes it).
 */
const WRITTEN_STATUSES = ["DELIVERED", "FAILED", "COMPLAINED"] as const;

/** Why the API's schema would refuse (or could not be shown to accept) what the service writes. */
export interface HostSchemaProblem {
  /**
   * `refuses`: a webhook would be refused (503 until fixed): migrate and start refuse.
   * `unverified`: a constraint the check cannot evaluate (several columns): a warning.
   */
  severity: "refuses" | "unverified";
  /** The API's table, as the service's search path names it (e.g. `documents`). */
  table: string;
  column?: string;
  constraint?: string;
  /** What is wrong, in a sentence. */
  problem: string;
  /** What to change, e.g. `alter table documents alter column email_status type varchar(10)`. */
  fix: string;
}

/** One column the service writes or reads, as the catalog describes it. */
interface ColumnFacts {
  table_name: string;
  relation: string;
  column_name: string;
  present: boolean;
  type: string | null;
  /** pg_type.typtype: b base, d domain, e enum, ... */
  kind: string | null;
  /** The type, or a domain's base type, without modifier (e.g. `character`, `character varying`). */
  base: string | null;
  /** Unique, non-partial, single-column index on it (for id). */
  unique: boolean;
  /** For email_status: the text that reads one status as the column's type (parameter $1). */
  probe: string | null;
}

/** A constraint of the API's on email_status. */
interface ConstraintFacts {
  relation: string;
  constraint_name: string;
  /** c check, f foreign key. */
  kind: "c" | "f";
  columns: number;
  definition: string;
  /** For a one-column constraint: the text that says whether it accepts the status $1. */
  probe: string | null;
}

/**
 * Lists why documents.email_status or tenants.email_status would refuse a
 * status the service writes, and whether email_status_at and id are usable:
 * - the type: text, varchar(n >= 10), an enum with every label, a domain
 *   whose CHECKs accept every status; char(n) pads (or refuses) statuses;
 * - single-column CHECKs, evaluated against each status (their expression is
 *   the API's own, read from the catalog; the status is a parameter);
 * - single-column foreign keys: the referenced table must hold each status;
 * - CHECKs and foreign keys over several columns cannot be evaluated alone:
 *   reported as `unverified`.
 * A table that does not exist is not a problem (migrate creates stand-ins).
 * Reads only; each probe is a SELECT.
 */
export async function findHostSchemaProblems(sql: Sql): Promise<HostSchemaProblem[]> {
  const problems: HostSchemaProblem[] = [];
  /** Per table, the statuses its column's type refuses already: a constraint is not blamed for them. */
  const refusedByType = new Map<string, Set<string>>();
  for (const column of await hostColumnsQuery(sql)) {
    if (column.column_name === "email_status") {
      const found = await statusColumnProblems(sql, column);
      refusedByType.set(column.relation, found.refused);
      problems.push(...found.problems);
    } else if (column.column_name === "email_status_at") problems.push(...statusAtProblems(column));
    else problems.push(...idProblems(column));
  }
  for (const constraint of await hostConstraintsQuery(sql)) {
    const skip = refusedByType.get(constraint.relation) ?? new Set();
    problems.push(...await constraintProblems(sql, constraint, skip));
  }
  return problems;
}

/** The problems that refuse webhooks (as opposed to warnings). */
export function refusals(problems: HostSchemaProblem[]): HostSchemaProblem[] {
  return problems.filter((problem) => problem.severity === "refuses");
}

/** One line per problem, for a log or a terminal. */
export function describeProblem(problem: HostSchemaProblem): string {
  const column = problem.column ? `${problem.table}.${problem.column}` : problem.table;
  const where = problem.constraint ? `${column} (constraint ${problem.constraint})` : column;
  return `${where}: ${problem.problem} Fix: ${problem.fix}`;
}

/**
 * The facts of id, email_status and email_status_at of documents and tenants
 * (those that exist). The probe text is built by the server (format_type
 * quotes the type); it holds no value: the status is its parameter.
 */
function hostColumnsQuery(sql: Sql): Promise<ColumnFacts[]> {
  return sql<ColumnFacts[]>`
    select h.table_name, h.rel::text as relation, c.column_name,
           a.attnum is not null as present,
           format_type(a.atttypid, a.atttypmod) as type,
           ty.typtype::text as kind,
           format_type(case when ty.typtype = 'd' then ty.typbasetype else a.atttypid end, null) as base,
           exists (
             select 1 from pg_index i
             where i.indrelid = h.rel and i.indisunique and i.indpred is null and i.indexprs is null
               and i.indnkeyatts = 1 and i.indkey[0] = a.attnum
           ) as unique,
           case when c.column_name = 'email_status' and a.attnum is not null then
             format('select 1 from jsonb_to_record(jsonb_build_object(''v'', $1::text)) as x(v %s)',
                    format_type(a.atttypid, a.atttypmod))
           end as probe
    from (select t as table_name, to_regclass(t) as rel from unnest(array['documents', 'tenants']) as t) h
    cross join unnest(array['id', 'email_status', 'email_status_at']) as c(column_name)
    left join pg_attribute a on a.attrelid = h.rel and a.attname = c.column_name and not a.attisdropped
    left join pg_type ty on ty.oid = a.atttypid
    where h.rel is not null
    order by h.table_name, c.column_name
  `;
}

/**
 * The API's CHECKs and foreign keys that involve email_status. For a
 * one-column constraint, the probe evaluates it for the status $1 read as the
 * column's type: a CHECK's own expression (pg_get_expr, as the API declared
 * it) over a row holding only that column; for a foreign key, whether the
 * referenced table holds the status.
 */
function hostConstraintsQuery(sql: Sql): Promise<ConstraintFacts[]> {
  return sql<ConstraintFacts[]>`
    select h.rel::text as relation, con.conname as constraint_name, con.contype::text as kind,
           cardinality(con.conkey) as columns,
           pg_get_constraintdef(con.oid) as definition,
           case
             when cardinality(con.conkey) <> 1 then null
             when con.contype = 'c' then
               format('select (%s) as ok from jsonb_to_record(jsonb_build_object(%L, $1::text)) as x(%I %s)',
                      pg_get_expr(con.conbin, con.conrelid), a.attname, a.attname,
                      format_type(a.atttypid, a.atttypmod))
             else
               format('select exists (select 1 from %s where %I::text = $1::text) as ok',
                      con.confrelid::regclass, ra.attname)
           end as probe
    from (select to_regclass(t) as rel from unnest(array['documents', 'tenants']) as t) h
    join pg_attribute a on a.attrelid = h.rel and a.attname = 'email_status' and not a.attisdropped
    join pg_constraint con on con.conrelid = h.rel and con.contype in ('c', 'f') and a.attnum = any(con.conkey)
    left join pg_attribute ra on ra.attrelid = con.confrelid and ra.attnum = con.confkey[1]
    order by h.rel::text, con.conname
  `;
}

/** The status column's type: can it take each status, as the statement writes it? */
async function statusColumnProblems(
  sql: Sql,
  column: ColumnFacts,
): Promise<{ problems: HostSchemaProblem[]; refused: Set<string> }> {
  const refused: { status: string; message: string }[] = [];
  if (column.present && column.base !== "character") {
    for (const status of WRITTEN_STATUSES) {
      const failure = await probeFailure(sql, column.probe!, status);
      if (failure) refused.push({ status, message: failure.message });
    }
  }
  return {
    problems: statusTypeProblems(column, refused),
    refused: new Set(refused.map((r) => r.status)),
  };
}

function statusTypeProblems(column: ColumnFacts, refused: { status: string; message: string }[]): HostSchemaProblem[] {
  const table = column.relation;
  const retype = `alter table ${table} alter column email_status type varchar(10)`;
  if (!column.present) {
    return [{
      severity: "refuses",
      table,
      column: "email_status",
      problem: "The table has no column email_status: the service writes the status there.",
      fix: `alter table ${table} add column email_status varchar(10)`,
    }];
  }
  if (column.base === "character") {
    return [{
      severity: "refuses",
      table,
      column: "email_status",
      problem: `Its type ${column.type} pads statuses with spaces or refuses the longer ones.`,
      fix: retype,
    }];
  }
  if (refused.length === 0) return [];
  const statuses = refused.map((r) => r.status).join(", ");
  const said = refused[0].message;
  if (column.kind === "e") {
    return [{
      severity: "refuses",
      table,
      column: "email_status",
      problem: `Its enum type ${column.type} has no label ${statuses} (${said}).`,
      fix: refused.map((r) => `alter type ${column.type} add value '${r.status}'`).join("; "),
    }];
  }
  if (column.kind === "d") {
    return [{
      severity: "refuses",
      table,
      column: "email_status",
      problem: `Its domain ${column.type} refuses ${statuses} (${said}).`,
      fix: `let the domain ${column.type} accept ${WRITTEN_STATUSES.join(", ")} (e.g. alter domain ${column.type} ` +
        `drop constraint <its check>, add a wider one), or ${retype}`,
    }];
  }
  return [{
    severity: "refuses",
    table,
    column: "email_status",
    problem: `Its type ${column.type} cannot hold ${statuses} (${said}).`,
    fix: retype,
  }];
}

function statusAtProblems(column: ColumnFacts): HostSchemaProblem[] {
  if (!column.present || ["timestamp with time zone", "timestamp without time zone"].includes(column.base ?? "")) {
    return [];
  }
  return [{
    severity: "refuses",
    table: column.relation,
    column: "email_status_at",
    problem: `Its type is ${column.type}: the service writes a timestamptz there (the column is the service's).`,
    fix: `alter table ${column.relation} alter column email_status_at type timestamptz using null`,
  }];
}

function idProblems(column: ColumnFacts): HostSchemaProblem[] {
  const table = column.relation;
  if (!column.present) {
    return [{
      severity: "refuses",
      table,
      column: "id",
      problem: "The table has no column id: the trail references rows by id.",
      fix: `give ${table} a primary key id (bigint, integer or uuid)`,
    }];
  }
  if (!["bigint", "integer", "uuid"].includes(column.type ?? "")) {
    return [{
      severity: "refuses",
      table,
      column: "id",
      problem: `Its type is ${column.type}: the trail supports bigint, integer and uuid keys.`,
      fix: `make ${table}.id bigint, integer or uuid`,
    }];
  }
  if (!column.unique) {
    return [{
      severity: "refuses",
      table,
      column: "id",
      problem: "It is neither the primary key nor unique: the trail cannot reference it.",
      fix: `alter table ${table} add primary key (id)`,
    }];
  }
  return [];
}

async function constraintProblems(
  sql: Sql,
  constraint: ConstraintFacts,
  refusedByType: Set<string>,
): Promise<HostSchemaProblem[]> {
  const base = { table: constraint.relation, column: "email_status", constraint: constraint.constraint_name };
  const what = constraint.kind === "c" ? "check" : "foreign key";
  if (constraint.probe === null) {
    return [{
      ...base,
      severity: "unverified",
      problem: `Its ${what} over ${constraint.columns} columns (${constraint.definition}) cannot be verified for ` +
        `${WRITTEN_STATUSES.join(", ")}: a row it refuses answers 503 until it is changed.`,
      fix: `make sure ${constraint.constraint_name} accepts ${WRITTEN_STATUSES.join(", ")} in email_status`,
    }];
  }
  const refused: string[] = [];
  const unverified: string[] = [];
  for (const status of WRITTEN_STATUSES) {
    // Refused by the column's type already, and reported with it.
    if (refusedByType.has(status)) continue;
    let ok: boolean | null;
    try {
      const [row] = await sql.unsafe(constraint.probe, [status]);
      ok = row.ok as boolean | null;
    } catch (error) {
      if (isRefusal(error)) {
        refused.push(status);
      } else if (isServerError(error)) {
        // The expression cannot be evaluated outside a row (it calls something the service may not run).
        unverified.push(`${status} (${(error as Error).message})`);
      } else {
        throw error;
      }
      continue;
    }
    // A CHECK accepts null (unknown); a foreign key needs the row.
    if (ok === false) refused.push(status);
  }
  const problems: HostSchemaProblem[] = [];
  if (refused.length > 0) {
    problems.push({
      ...base,
      severity: "refuses",
      problem: `Its ${what} (${constraint.definition}) refuses ${refused.join(", ")}.`,
      fix: constraint.kind === "c"
        ? `alter table ${constraint.relation} drop constraint ${constraint.constraint_name}, add constraint ` +
          `${constraint.constraint_name} check (...) accepting ${WRITTEN_STATUSES.join(", ")} as well`
        : `insert ${refused.join(", ")} into the table ${constraint.constraint_name} references`,
    });
  }
  if (unverified.length > 0) {
    problems.push({
      ...base,
      severity: "unverified",
      problem: `Its ${what} could not be evaluated for ${unverified.join("; ")}.`,
      fix: `make sure ${constraint.constraint_name} accepts ${WRITTEN_STATUSES.join(", ")}`,
    });
  }
  return problems;
}

/** The database's refusal of `status` by `probe`, or null when it takes it; any other failure is thrown. */
async function probeFailure(sql: Sql, probe: string, status: string): Promise<Error | null> {
  try {
    await sql.unsafe(probe, [status]);
    return null;
  } catch (error) {
    if (isRefusal(error)) return error as Error;
    throw error;
  }
}

/** SQLSTATE class 22 (data exception) or 23 (integrity): the value was refused. */
function isRefusal(error: unknown): boolean {
  return /^2[23]/.test(String((error as { code?: unknown })?.code));
}

/** An error the server raised (a SQLSTATE), not a lost connection. */
function isServerError(error: unknown): boolean {
  return /^[0-9A-Z]{5}$/.test(String((error as { code?: unknown })?.code)) &&
    !/^(08|57)/.test(String((error as { code?: unknown })?.code));
}
