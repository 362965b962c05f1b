import { eraseRecipient } from "../db/erase_recipient_query.ts";
import { loadDatabaseSettings } from "../config/database_settings.ts";
import { readEnv } from "../config/read_env.ts";
import { openToolDatabase } from "../db/open_tool_database.ts";

const USAGE = `Usage: deno task erase <email address>

Erases one person's data from the audit trail (email_events), for an erasure request: the recipient,
the message headers (all but the message-id), the envelope's addresses, the stored message's URL and
key, and the address wherever else an event holds it. The entries themselves stay (type, times,
reason). Works on the service's database (DATABASE_URL, else the embedded one, running or not).
Matching is case-insensitive; running it again erases nothing more. Gives up when the database does not
answer the connect within 10 s or the erasure within 60 s (cancelled; run it again).`;

/** `deno task erase`: an erasure request, on the database the service uses. */
async function main(args: string[]): Promise<number> {
  if (args[0] === "--help" || args[0] === "-h") {
    console.log(USAGE);
    return 0;
  }
  const address = args.length === 1 ? args[0].trim() : "";
  if (!address.includes("@")) {
    console.error(USAGE);
    return 2;
  }
  let db;
  try {
    db = await openToolDatabase(loadDatabaseSettings(readEnv()));
  } catch (error) {
    console.error(`Could not open the database: ${(error as Error).message}`);
    return 1;
  }
  try {
    const erased = await eraseRecipient(db.sql, address);
    // The address itself is not echoed: this output may end up in a shared log.
    console.log(`Erased the address from ${erased} trail ${erased === 1 ? "entry" : "entries"} in ${db.description}.`);
    return 0;
  } catch (error) {
    console.error(`Erasure failed: ${(error as Error).message}`);
    return 1;
  } finally {
    await db.close();
  }
}

if (import.meta.main) {
  // Exits at once: a socket still connecting to a silent database must not keep the process alive.
  Deno.exit(await main(Deno.args));
}
