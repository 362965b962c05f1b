import type { ReservedSql } from "postgres";

/**
 * The migrations of the release before the namespace (f0e3176), which its
 * runner recorded in a `schema_migrations (name, applied_at, checksum)` of
 * the API's schema. 0008 moves what they made into mailgun_webhook.
 */
const LEGACY_MIGRATIONS = [
  "0001_email_tracking.sql",
  "0002_webhook_body_hash.sql",
  "0003_guest_trail.sql",
  "0004_message_id_indexes.sql",
  "0005_trail_day_key.sql",
  "0006_unsettled_indexes.sql",
  "0007_token_day_partitions.sql",
];

/**
 * Moves the earlier release's migration record into
 * mailgun_webhook.schema_migrations (its rows, checksums kept), inside the
 * caller's transaction, and drops the old table when nothing but those rows
 * is in it. A `schema_migrations` of another shape is the API's (Rails,
 * dbmate, golang-migrate, Ecto: a `version` column): it is never read,
 * altered or dropped; nor are rows of ours-shaped tables that are not our
 * names. Refuses a database migrated by the earlier release but not to its
 * last migration: 0008 moves that release's final schema only.
 */
export async function adoptLegacyRecord(conn: ReservedSql): Promise<void> {
  const [shape] = await conn`
    select c.oid::regclass::text as name,
           array_agg(a.attname::text order by a.attname) as columns
    from pg_class c
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    where c.relname = 'schema_migrations' and c.relnamespace = current_schema()::regnamespace and c.relkind = 'r'
    group by c.oid
  `;
  if (shape === undefined) return;
  if ((shape.columns as string[]).join(",") !== "applied_at,checksum,name") return;
  const table = shape.name as string;
  // The table's name comes from the catalog (quoted by regclass), not from a value.
  const rows = await conn.unsafe(
    `select name, checksum, applied_at from ${table} where name = any($1::text[]) order by name`,
    [LEGACY_MIGRATIONS],
  );
  if (rows.length === 0) return;
  const found = new Set(rows.map((row) => row.name as string));
  const missing = LEGACY_MIGRATIONS.filter((name) => !found.has(name));
  if (missing.length > 0) {
    throw new Error(
      `This database was migrated by an earlier release of the service, but not to its last migration ` +
        `(${table} lacks ${missing.join(", ")}): deploy release f0e3176 and run its deno task migrate first, ` +
        `then this one.`,
    );
  }
  for (const row of rows) {
    await conn`
      insert into mailgun_webhook.schema_migrations (name, checksum, applied_at)
      values (${row.name}, ${row.checksum ?? "not recorded"}, ${row.applied_at ?? new Date()})
      on conflict (name) do nothing
    `;
  }
  const [{ others }] = await conn.unsafe(
    `select count(*)::int as others from ${table} where not (name = any($1::text[]))`,
    [LEGACY_MIGRATIONS],
  );
  if (others === 0) await conn.unsafe(`drop table ${table}`);
}
