import type { Sql } from "postgres";

/**
 * The definition of what the service owns, as the catalog says it, in a form
 * two databases can be compared by: schema mailgun_webhook, the trail
 * email_events, and the service's indexes on the API's tables. Tables and
 * columns (types, defaults, nullability, identity, partitioning), indexes
 * (pg_get_indexdef, validity), constraints (pg_get_constraintdef), triggers
 * (pg_get_triggerdef), functions (pg_get_functiondef) and sequences (their
 * parameters, not their current values). Names, not OIDs: those differ
 * between any two databases.
 */
export async function serviceCatalog(sql: Sql): Promise<Record<string, string[]>> {
  const ours = sql`
    select c.oid from pg_class c
    where c.relnamespace = 'mailgun_webhook'::regnamespace or c.oid = 'email_events'::regclass
  `;
  const lines = (rows: { line: string }[]) => rows.map((row) => row.line);
  return {
    tables: lines(
      await sql`
      select format('%s %s %s %s', c.oid::regclass, c.relkind, coalesce(pg_get_partkeydef(c.oid), '-'),
                    coalesce(pg_get_expr(c.relpartbound, c.oid), '-')) as line
      from pg_class c where c.oid in (${ours}) and c.relkind in ('r', 'p')
      order by 1`,
    ),
    columns: lines(
      await sql`
      select format('%s.%s #%s %s%s%s%s default %s', a.attrelid::regclass, a.attname, a.attnum,
                    format_type(a.atttypid, a.atttypmod), case when a.attnotnull then ' not null' else '' end,
                    case when a.attidentity <> '' then ' identity ' || a.attidentity::text else '' end,
                    case when a.attgenerated <> '' then ' generated' else '' end,
                    coalesce(pg_get_expr(d.adbin, d.adrelid), '-')) as line
      from pg_attribute a
      left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
      where a.attrelid in (${ours}) and a.attnum > 0 and not a.attisdropped
        and (select relkind from pg_class where oid = a.attrelid) in ('r', 'p')
      order by 1`,
    ),
    indexes: lines(
      await sql`
      select pg_get_indexdef(i.indexrelid) || case when i.indisvalid then '' else ' INVALID' end as line
      from pg_index i join pg_class c on c.oid = i.indexrelid
      where i.indrelid in (${ours}) or c.relname like 'mailgun_webhook\\_%'
      order by 1`,
    ),
    constraints: lines(
      await sql`
      select format('%s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid)) as line
      from pg_constraint where conrelid in (${ours})
      order by 1`,
    ),
    triggers: lines(
      await sql`
      select pg_get_triggerdef(oid) as line from pg_trigger
      where tgrelid in (${ours}) and not tgisinternal
      order by 1`,
    ),
    functions: lines(
      await sql`
      select pg_get_functiondef(p.oid) as line from pg_proc p
      where p.pronamespace = 'mailgun_webhook'::regnamespace
      order by 1`,
    ),
    sequences: lines(
      await sql`
      select format('%s.%s %s %s %s %s %s %s', schemaname, sequencename, data_type, start_value, min_value,
                    max_value, increment_by, cycle) as line
      from pg_sequences
      where schemaname = 'mailgun_webhook' or sequencename like 'email\\_events\\_%'
      order by 1`,
    ),
  };
}
