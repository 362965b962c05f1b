/** An erasure request: one person's data leaves the trail; to everything else the trail stays append-only. */
import assert from "node:assert/strict";
import type { JSONValue, Sql } from "postgres";
import { connectPostgres } from "../src/db/connect_postgres.ts";
import { migrate } from "../src/db/migrate.ts";
import { isOneAddress } from "../src/erasure/one_address.ts";
import { eventData, post, signedBody } from "./helpers/mailgun.ts";
import { childEnv, PROJECT_DIR, run } from "./helpers/subprocess.ts";
import { createTestDatabase } from "./helpers/test_database.ts";
import { insertRow, newMessageId, startTestService } from "./helpers/test_service.ts";

const ADDRESS = "alice.o'hara+invoices@example.org";

/** `deno task --quiet erase` with `input` on its stdin. */
async function eraseFromStdin(input: string, databaseUrl: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "erase"],
    cwd: PROJECT_DIR,
    env: childEnv({ DATABASE_URL: databaseUrl }),
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(input));
  await writer.close();
  const output = await child.output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

Deno.test("deno task erase <address> erases one person's data from the trail, and nobody else's", async () => {
  const svc = await startTestService();
  try {
    const send = async (data: Record<string, unknown>) =>
      assert.equal((await post(svc.url, signedBody(svc.key, data).body)).status, 200);
    const aliceDoc = newMessageId();
    const bobDoc = newMessageId();
    await insertRow(svc.sql, "documents", aliceDoc);
    await insertRow(svc.sql, "documents", bobDoc);
    const failed = eventData("permanent", aliceDoc, {
      recipient: ADDRESS.toUpperCase(),
      envelope: { sender: "invoices@mg.example.com", targets: ADDRESS, transport: "smtp" },
      "delivery-status": { code: 550, message: `5.1.1 <${ADDRESS}>: Recipient address rejected` },
      "user-variables": { customer: { email: ADDRESS, plan: "pro" } },
      tags: ["invoice", ADDRESS],
    });
    const headers = (failed.message as { headers: Record<string, string> }).headers;
    headers.to = `Alice O'Hara <${ADDRESS}>`;
    await send(failed);
    await send(eventData("delivered", aliceDoc, { recipient: ADDRESS }));
    await send(eventData("delivered", bobDoc, { recipient: "bob@example.org" }));
    const trail = async () =>
      (await svc.sql`select id, document_id, type, mailgun_event_id, event_timestamp, severity, reason, received_at,
                              recipient, event_data from email_events order by id`).map((row) => ({ ...row }));
    const before = await trail();
    assert.equal(before.length, 3);

    const result = await run(["task", "--quiet", "erase", ADDRESS.replace("alice", "Alice")], {
      env: { DATABASE_URL: svc.db.url },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^Erased the address from 2 trail entries in DATABASE_URL/);
    assert.ok(!(result.stdout + result.stderr).toLowerCase().includes(ADDRESS), "the address was echoed");

    const after = await trail();
    for (const [i, row] of after.entries()) {
      const { recipient: _r, event_data: _e, ...kept } = row;
      const { recipient: _br, event_data: _be, ...keptBefore } = before[i];
      assert.deepEqual(kept, keptBefore, "only recipient and event_data change");
    }
    assert.deepEqual(after[2], before[2], "another person's entry is untouched");
    for (const row of after.slice(0, 2)) {
      const data = row.event_data as Record<string, unknown>;
      assert.equal(row.recipient, null);
      assert.ok(!JSON.stringify(data).toLowerCase().includes(ADDRESS), JSON.stringify(data));
      assert.equal(data.recipient, undefined);
      assert.equal(data.storage, undefined);
      assert.deepEqual((data.message as Record<string, unknown>).headers, { "message-id": aliceDoc });
    }
    const data = after[0].event_data as Record<string, Record<string, unknown>>;
    assert.deepEqual(data.envelope, { transport: "smtp" });
    assert.equal(data["delivery-status"].message, "5.1.1 <[erased]>: Recipient address rejected");
    assert.deepEqual(data["user-variables"], { customer: { email: "[erased]", plan: "pro" } });
    assert.deepEqual(data.tags, ["invoice", "[erased]"]);
    assert.equal(after[0].type, "EMAIL_FAILED");

    // Mailgun re-delivering an erased event brings nothing back (the trail's key is the event, not its data).
    await send(failed);
    assert.deepEqual(await trail(), after);
    // On stdin, as docs/schema.md (Erasure requests) suggests for keeping it out of shell history.
    const again = await eraseFromStdin(`${ADDRESS}\n`, svc.db.url);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Erased the address from 0 trail entries/);
  } finally {
    await svc.close();
  }
});

/** A migrated database of its own, and a connection to it (as the tests' superuser). */
async function migratedDatabase() {
  const db = await createTestDatabase();
  const sql = connectPostgres(db.url, { max: 1, connectTimeoutMs: 5000, prepare: true });
  await migrate(sql);
  return {
    sql,
    async close() {
      await sql.end();
      await db.drop();
    },
  };
}

/** Appends a trail entry (appending needs no erasure) for a new document; returns the entry's id. */
async function addEntry(sql: Sql, recipient: string | null, data: Record<string, unknown>): Promise<number> {
  const documentId = await insertRow(sql, "documents", newMessageId());
  const [row] = await sql`
    insert into email_events (document_id, type, mailgun_event_id, event_timestamp, recipient, event_data)
    values (${documentId}, 'EMAIL_DELIVERED', ${crypto.randomUUID()}, now(), ${recipient},
            ${sql.json(data as JSONValue)})
    returning id`;
  return Number(row.id);
}

/** Every entry as stored: its recipient, its event_data's text, and xmin (which changes with any write to the row). */
async function storedTrail(sql: Sql): Promise<Map<number, { recipient: string | null; data: string; xmin: string }>> {
  const rows = await sql`select id, recipient, event_data::text as data, xmin::text as xmin from email_events`;
  return new Map(rows.map((row) => [Number(row.id), { recipient: row.recipient, data: row.data, xmin: row.xmin }]));
}

/** An event for `recipient`, naming it wherever Mailgun's events name a recipient, and more. */
function eventFor(recipient: string): Record<string, unknown> {
  return {
    event: "delivered",
    recipient,
    "recipient-domain": recipient.split("@")[1],
    message: {
      headers: {
        "message-id": newMessageId(),
        from: "Invoices <invoices@mg.example.com>",
        to: `Someone <${recipient}>`,
        subject: "Your invoice",
      },
    },
    envelope: { sender: "invoices@mg.example.com", targets: recipient, transport: "smtp" },
    storage: {
      key: "AgEASmF2YS1zdG9yYWdlLWtleQ",
      url: `https://storage-eu.api.mailgun.net/v3/domains/mg/messages/AgEA?for=${encodeURIComponent(recipient)}`,
    },
    "delivery-status": { code: 250, message: `OK: sent to ${recipient}.` },
    "user-variables": { [recipient]: "vip", contact: recipient },
    tags: [`<${recipient}>`],
  };
}

/** Other people: each shares all but one character, a prefix or a suffix with ann@example.com. */
const NEIGHBOURS = [
  "joann@example.com",
  "xann@example.com",
  "j.ann@example.com",
  "j+ann@example.com",
  "o'ann@example.com",
  "ann@example.com.au",
  "ann@example.community",
  "ann@example.co",
  "anne@example.com",
  "ann@example-com.org",
  "ann@sub.example.com",
];

Deno.test("erasing one address changes only the entries that hold it as a whole address", async () => {
  const { sql, close } = await migratedDatabase();
  try {
    const others = await Promise.all(NEIGHBOURS.map((address) => addEntry(sql, address, eventFor(address))));
    // A message to two people: Bob's entry names Ann in its headers, envelope, a variable and a key.
    const bobData = eventFor("bob@example.org");
    const bobHeaders = (bobData.message as { headers: Record<string, string> }).headers;
    bobHeaders.to = "bob@example.org, Ann <ann@example.com>";
    (bobData.envelope as Record<string, string>).targets = "bob@example.org,ANN@example.com";
    bobData["user-variables"] = { cc: "ann@example.com", "ann@example.com": { role: "cc" } };
    const bob = await addEntry(sql, "bob@example.org", bobData);
    const annData = eventFor("ann@example.com");
    const ann = await addEntry(sql, "Ann@Example.com", annData);
    const before = await storedTrail(sql);

    const [row] = await sql`select mailgun_webhook.erase_recipient('ANN@example.COM') as erased`;
    assert.equal(row.erased, 2);

    const after = await storedTrail(sql);
    for (const id of others) {
      assert.deepEqual(after.get(id), before.get(id), `entry of ${NEIGHBOURS[others.indexOf(id)]}`);
    }

    const [annAfter] = await sql`select recipient, event_data from email_events where id = ${ann}`;
    assert.equal(annAfter.recipient, null);
    assert.deepEqual(annAfter.event_data, {
      event: "delivered",
      message: {
        headers: { "message-id": (annData.message as { headers: Record<string, string> }).headers["message-id"] },
      },
      envelope: { transport: "smtp" },
      "delivery-status": { code: 250, message: "OK: sent to [erased]." },
      "user-variables": { "[erased]": "vip", contact: "[erased]" },
      tags: ["<[erased]>"],
    });

    const [bobAfter] = await sql`select recipient, event_data from email_events where id = ${bob}`;
    assert.equal(bobAfter.recipient, "bob@example.org");
    assert.deepEqual(bobAfter.event_data, {
      ...bobData,
      message: { headers: { ...bobHeaders, to: "bob@example.org, Ann <[erased]>" } },
      envelope: { ...(bobData.envelope as object), targets: "bob@example.org,[erased]" },
      "user-variables": { cc: "[erased]", "[erased]": { role: "cc" } },
    }, "only the address goes from another recipient's entry");

    for (const id of [ann, bob]) {
      const text = after.get(id)!.data.toLowerCase();
      assert.ok(!text.includes("ann@example.com") && !text.includes("ann%40example.com"), text);
    }

    // Again: nothing left to erase, and no entry is even rewritten.
    const [again] = await sql`select mailgun_webhook.erase_recipient('ann@example.com') as erased`;
    assert.equal(again.erased, 0);
    assert.deepEqual(await storedTrail(sql), after);
  } finally {
    await close();
  }
});

Deno.test("the address is matched literally: `_`, `.` and `+` are no wildcards", async () => {
  const { sql, close } = await migratedDatabase();
  try {
    for (const address of ["axb@example.com", "a_b@exampleXcom", "aab@example.com", "a+b@example.com"]) {
      await addEntry(sql, address, eventFor(address));
    }
    const before = await storedTrail(sql);
    const [row] = await sql`select mailgun_webhook.erase_recipient('a_b@example.com') as erased`;
    assert.equal(row.erased, 0);
    const [plus] = await sql`select mailgun_webhook.erase_recipient('a.b@example.com') as erased`;
    assert.equal(plus.erased, 0);
    assert.deepEqual(await storedTrail(sql), before);
  } finally {
    await close();
  }
});

/** Exactly one address, or not (the rule of src/erasure/one_address.ts and of is_one_address in migrations/0011). */
const ADDRESS_CASES: [string, boolean][] = [
  ["ann@example.com", true],
  ["Alice.O'Hara+invoices@mail.example.org", true],
  ["a_b@example.com", true],
  ["x@xn--bcher-kva.example", true],
  ["", false],
  ["@", false],
  ["@example.com", false],
  ["example.com", false],
  ["ann@", false],
  ["ann@localhost", false],
  ["ann@example.com bob@example.com", false],
  ["ann@example.com,bob@example.com", false],
  ["ann@example.com;bob@example.com", false],
  [" ann@example.com", false],
  ["ann@example.com\n", false],
  ["ann@@example.com", false],
  ["%@example.com", false],
  ["%", false],
  ["a%b@example.com", false],
  ["_", false],
  ["_@%", false],
  ["ann@exam_ple.com", false],
  ["ann@example.123", false],
  ["ann@-example.com", false],
  ["a..b@example.com", false],
  [".a@example.com", false],
  ['"ann smith"@example.com', false],
  ["ann@[192.0.2.1]", false],
  ["Ann <ann@example.com>", false],
  ["jörg@example.de", false],
  [`${"a".repeat(65)}@example.com`, false],
  [`a@${"b".repeat(250)}.com`, false],
];

Deno.test("erase_recipient and deno task erase refuse anything that is not exactly one address", async () => {
  const { sql, close } = await migratedDatabase();
  try {
    await addEntry(sql, "ann@example.com", eventFor("ann@example.com"));
    const before = await storedTrail(sql);
    for (const [text, accepted] of ADDRESS_CASES) {
      assert.equal(isOneAddress(text), accepted, `isOneAddress(${JSON.stringify(text)})`);
      const [row] = await sql`select coalesce(mailgun_webhook.is_one_address(${text}), false) as ok`;
      assert.equal(row.ok, accepted, `is_one_address(${JSON.stringify(text)})`);
      if (!accepted) {
        await assert.rejects(
          sql`select mailgun_webhook.erase_recipient(${text})`,
          (error: { code?: string; message?: string }) =>
            error.code === "22023" && /exactly one email address/.test(error.message ?? ""),
        );
      }
    }
    await assert.rejects(sql`select mailgun_webhook.erase_recipient(null)`, { code: "22023" });
    assert.deepEqual(await storedTrail(sql), before);

    for (const args of [["@"], ["%@example.net"], ["zed@example.net bob@example.net"], ["zed@example.net", "x"], []]) {
      const result = await run(["task", "--quiet", "erase", ...args], {
        env: { DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" },
      });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /Not exactly one email address: nothing was erased/);
      if (args.length > 0 && args[0].length > 1) assert.ok(!result.stderr.includes(args[0]), "the argument was echoed");
    }
    const twoLines = await eraseFromStdin("zed@example.net\nbob@example.net\n", "postgres://nobody@127.0.0.1:1/none");
    assert.equal(twoLines.code, 2, twoLines.stderr);
  } finally {
    await close();
  }
});

Deno.test("outside the erasure function the trail stays append-only, whatever the session sets", async () => {
  const { sql, close } = await migratedDatabase();
  try {
    const entry = await addEntry(sql, "ann@example.com", eventFor("ann@example.com"));
    await addEntry(sql, "bob@example.org", eventFor("bob@example.org"));
    const before = await storedTrail(sql);
    await assert.rejects(sql`update email_events set recipient = null`, /append-only: erase a person's data/);
    // The guard of an earlier release was this setting: it opens nothing now.
    await assert.rejects(
      sql.begin(async (tx) => {
        await tx`select set_config('email_events.erasing', 'on', true)`;
        await tx`update email_events set event_data = '{}'`;
      }),
      /append-only: erase a person's data/,
    );
    // The function's mark does not outlive it inside the caller's transaction.
    await assert.rejects(
      sql.begin(async (tx) => {
        await tx`select mailgun_webhook.erase_recipient('ann@example.com')`;
        await tx`update email_events set recipient = 'x'`;
      }),
      /append-only: erase a person's data/,
    );
    await assert.rejects(sql`delete from email_events where id = ${entry}`, /its entries go only with their document/);
    await assert.rejects(sql`truncate email_events`, /append-only/);
    assert.deepEqual(await storedTrail(sql), before);
    // Even marked as an erasure (which only the namespace's owner, here a
    // superuser, can do), an update may change only recipient and event_data.
    await assert.rejects(
      sql.begin(async (tx) => {
        await tx`insert into mailgun_webhook.erasing_transactions (txid) values (txid_current())`;
        await tx`update email_events set type = 'EMAIL_FAILED'`;
      }),
      /an erasure changes only recipient and event_data/,
    );
    // The API's delete of a document takes its trail with it.
    await sql`delete from documents where id = (select document_id from email_events where id = ${entry})`;
    assert.equal((await storedTrail(sql)).has(entry), false);
  } finally {
    await close();
  }
});
