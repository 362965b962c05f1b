import type { Sql } from "postgres";

/** Where the schema's migrations live. */
export const MIGRATIONS_DIR = new URL("../../migrations/", import.meta.url);

/** Any fixed number: the advisory lock that serialises concurrent migrations. */
const MIGRATION_LOCK_KEY = 7_240_431_001;

/**
 * Applies the `.sql` files of `dir` not applied yet, in name order, in one
 * transaction that holds an advisory lock: running it twice, or twice at
 * the same moment, is safe. Returns the names it applied.
 */
export async function migrate(sql: Sql, dir: URL = MIGRATIONS_DIR): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith(".sql")) files.push(entry.name);
  }
  files.sort();
  const scripts = await Promise.all(files.map((name) => Deno.readTextFile(new URL(name, dir))));
  return await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
    await tx`
      create table if not exists schema_migrations (
        name text primary key,
        applied_at timestamptz not null default now()
      )
    `;
    const applied = new Set((await tx`select name from schema_migrations`).map((row) => row.name as string));
    const done: string[] = [];
    for (const [i, name] of files.entries()) {
      if (applied.has(name)) continue;
      // A migration file is trusted SQL from the repository, with no values in it.
      await tx.unsafe(scripts[i]);
      await tx`insert into schema_migrations (name) values (${name})`;
      done.push(name);
    }
    return done;
  });
}
