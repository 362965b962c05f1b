/**
 * A consumer of the feed as the API would run it, as a process the tests
 * kill: the cursor in `feed_cursor`, each change inserted into `handled` in
 * the same transaction (a change handed twice would break its primary key).
 * Usage: deno run --allow-net --allow-env feed_consumer_child.ts <database url>
 */
import postgres from "postgres";
import { startFeedConsumer } from "../../src/feed/feed_consumer.ts";

const sql = postgres(Deno.args[0], { max: 2, onnotice: () => {} });
const consumer = startFeedConsumer({
  sql,
  start: "beginning",
  batchSize: 7,
  pollIntervalMs: 1_000,
  cursor: {
    load: async (tx) => (await tx`select cursor from feed_cursor for update`)[0]?.cursor,
    save: async (tx, cursor) => {
      await tx`insert into feed_cursor (one, cursor) values (true, ${cursor})
               on conflict (one) do update set cursor = excluded.cursor`;
    },
  },
  async onChange(change, tx) {
    await tx`insert into handled (cursor, row_kind, row_id, rank) values (${change.cursor}, ${change.rowKind}, ${change.rowId}, ${change.rank})`;
  },
  onError: (error) => console.error(`consumer error: ${(error as Error)?.message ?? error}`),
});
console.log("consuming");
Deno.addSignalListener("SIGTERM", async () => {
  await consumer.stop();
  await sql.end();
  Deno.exit(0);
});
await consumer.done;
