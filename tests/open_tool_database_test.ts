/** The database tools open (src/db/open_tool_database.ts). */
import assert from "node:assert/strict";
import { openToolDatabase } from "../src/db/open_tool_database.ts";

Deno.test("tools open the embedded files when the running service's URL file is stale", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mgwh-tooldb-" });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (listener.addr as Deno.NetAddr).port;
  listener.close();
  // What a crashed service leaves behind.
  await Deno.writeTextFile(`${dir}/embedded-url`, `postgres://postgres@127.0.0.1:${closedPort}/postgres\n`);
  const db = await openToolDatabase({}, dir);
  try {
    assert.match(db.description, /no service running/);
    const [row] = await db
      .sql`insert into documents (email_message_id, email_status) values ('<a@b>', 'SENT') returning id`;
    assert.equal(Number(row.id), 1);
  } finally {
    await db.close();
  }
  const again = await openToolDatabase({}, dir);
  try {
    const [row] = await again.sql`select count(*)::int as n from documents`;
    assert.equal(row.n, 1, "the files were kept");
  } finally {
    await again.close();
    await Deno.remove(dir, { recursive: true });
  }
});
