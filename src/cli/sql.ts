import { loadDatabaseSettings } from "../config/database_settings.ts";
import { openToolDatabase } from "../db/open_tool_database.ts";

const USAGE = `Usage: deno task sql "<one SQL statement>"

Runs one statement on the service's database (DATABASE_URL, else the embedded one, running or not)
and prints the rows it returns. Gives up when the database does not answer the connect within 10 s, or
the statement within 60 s (it is cancelled); use psql for longer work. For example:

  deno task sql "insert into documents (email_message_id, email_status) values ('<id@mg.example.com>', 'SENT') returning id"
  deno task sql "select type, event_timestamp, reason from email_events where document_id = 1 order by event_timestamp"`;

/** `deno task sql`: one statement on the database the service uses, without needing psql. */
async function main(args: string[]): Promise<number> {
  if (args[0] === "--help" || args[0] === "-h") {
    console.log(USAGE);
    return 0;
  }
  if (args.length !== 1 || args[0].trim() === "") {
    console.error(USAGE);
    return 2;
  }
  let db;
  try {
    db = await openToolDatabase(loadDatabaseSettings());
  } catch (error) {
    console.error(`Could not open the database: ${(error as Error).message}`);
    return 1;
  }
  try {
    // The statement is the operator's own, typed at their own terminal: running it as given is the point.
    const result = await db.sql.unsafe(args[0]);
    if (result.length > 0) console.table(result.map((row) => ({ ...row })));
    console.log(`${result.command ?? "OK"} ${result.count ?? result.length}`);
    return 0;
  } catch (error) {
    console.error(`SQL error: ${(error as Error).message}`);
    return 1;
  } finally {
    await db.close();
  }
}

if (import.meta.main) {
  // Exits at once: a socket still connecting to a silent database must not keep the process alive.
  Deno.exit(await main(Deno.args));
}
