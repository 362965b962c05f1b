import { eraseRecipient } from "../db/erase_recipient_query.ts";
import { loadDatabaseSettings } from "../config/database_settings.ts";
import { openToolDatabase } from "../db/open_tool_database.ts";
import { isOneAddress } from "../erasure/one_address.ts";

const USAGE = `Usage: deno task --quiet erase <email address>
       printf '%s\\n' <email address> | deno task --quiet erase

(Without --quiet, deno task echoes its command line, the address included, to stderr; on stdin the address
also stays out of shell history and process lists.)

Erases one person's data from the audit trail (email_events), for an erasure request. Only entries that hold
the address as a whole address (case-insensitive; joann@example.com and ann@example.com.au are other people)
change. In the person's own entries: the recipient, the message headers (all but the message-id), the
envelope's addresses, the stored message's URL and key; in every entry that holds it, the address wherever
it stands (values, keys, free text, URLs, also percent-encoded) becomes [erased]. The entries themselves stay
(type, times, reason). Works on the service's database (DATABASE_URL, else the embedded one, running or not).
Prints how many entries changed, never the address; running it again erases nothing more.

The argument must be exactly one address: local-part@domain.tld, no spaces, no second address, no %.
Gives up when the database does not answer the connect within 10 s or the erasure within 60 s (cancelled;
run it again).`;

/** The most an address on stdin may take (254 characters and a line break), with room to spare. */
const STDIN_LIMIT = 1024;

/**
 * One line from stdin, its line break removed, or undefined from a terminal
 * (nobody is piping an address) or when stdin holds more than one line.
 */
async function readStdinLine(): Promise<string | undefined> {
  if (Deno.stdin.isTerminal()) return undefined;
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of Deno.stdin.readable) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > STDIN_LIMIT) return undefined;
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return new TextDecoder().decode(bytes).replace(/\r?\n$/, "");
}

/** `deno task erase`: an erasure request, on the database the service uses. */
async function main(args: string[]): Promise<number> {
  if (args[0] === "--help" || args[0] === "-h") {
    console.log(USAGE);
    return 0;
  }
  const address = args.length === 0 ? await readStdinLine() : args.length === 1 ? args[0] : undefined;
  if (address === undefined || !isOneAddress(address)) {
    // The argument is not echoed: it may be (part of) someone's address.
    console.error(`Not exactly one email address: nothing was erased.\n\n${USAGE}`);
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
    const erased = await eraseRecipient(db.sql, address);
    // Only a count: this output may end up in a shared log, and even a hash of
    // an address would let whoever guesses the address confirm the request.
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
