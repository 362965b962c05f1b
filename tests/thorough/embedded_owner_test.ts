/**
 * Embedded mode has one owner: the files in .pglite/data are opened by one
 * process, a second `deno task start` fails before touching them, tools go
 * through the running service, and `embedded-url` appears only once the
 * service listens.
 */
import assert from "node:assert/strict";
import { openToolDatabase } from "../../src/db/open_tool_database.ts";
import { tryLockEmbeddedDatabase } from "../../src/db/embedded_lock.ts";
import { copy } from "../helpers/copy_project.ts";
import { failWithStderr, run, signalChild, spawn } from "../helpers/subprocess.ts";

const listening = (line: string) => line.includes('"msg":"listening"');

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

Deno.test("one owner: a second start fails first, tools use the running service, the URL file follows listening", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mgwh-owner-" });
  await copy(dir);
  const occupied = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const busyPort = (occupied.addr as Deno.NetAddr).port;
  let child;
  try {
    // A service that never listens leaves no embedded-url behind for tools to follow.
    const failed = await run(["task", "start"], { cwd: dir, env: { PORT: String(busyPort) } });
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, new RegExp(`port ${busyPort} is already in use`));
    assert.equal(await exists(`${dir}/.pglite/embedded-url`), false);

    child = spawn(["task", "start"], { cwd: dir, env: { PORT: "0" } });
    const url = JSON.parse(await child.waitFor(listening, 120_000)).url as string;
    const urlFile = await Deno.readTextFile(`${dir}/.pglite/embedded-url`);

    const second = await run(["task", "start"], { cwd: dir, env: { PORT: "0" } });
    assert.equal(second.code, 1);
    const lines = second.stderr.trim().split("\n").filter((line) => !line.startsWith("Task "));
    assert.equal(lines.length, 1, second.stderr);
    assert.match(lines[0], /^Start-up failed: The embedded database in \.pglite is already in use by another process/);
    assert.ok(!second.stdout.includes('"msg":"listening"'), second.stdout);
    assert.equal(await Deno.readTextFile(`${dir}/.pglite/embedded-url`), urlFile, "the running service's URL stays");

    // deno task sql writes where the running service reads: the simulated event finds the document.
    const messageId = "<20260101120000.0123456789abcdef@mg.comprobify.test>";
    const insert = await run([
      "task",
      "sql",
      `insert into documents (email_message_id, email_status) values ('${messageId}', 'SENT')`,
    ], { cwd: dir });
    assert.equal(insert.code, 0, insert.stderr);
    const simulate = await run(["task", "simulate", "delivered", messageId, "--url", url], { cwd: dir });
    assert.equal(simulate.code, 0, simulate.stderr + simulate.stdout);
    assert.match(simulate.stdout, /^200 \{"ok":true,"outcome":"applied"\}$/m);

    child.process.kill("SIGTERM");
    assert.equal((await child.process.status).code, 0);
    assert.equal(await exists(`${dir}/.pglite/embedded-url`), false);
  } catch (error) {
    if (child) await failWithStderr(child, error);
    throw error;
  } finally {
    occupied.close();
    if (child) {
      signalChild(child, "SIGKILL");
      await child.process.status;
    }
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a tool never opens .pglite/data while another process holds it, and holds it while it does", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mgwh-owner-tool-" });
  try {
    const service = await tryLockEmbeddedDatabase(dir);
    assert.ok(service);
    // A service still starting holds the lock but serves no URL yet: the tool fails and says why.
    await assert.rejects(() => openToolDatabase({}, dir), /held by another process that serves no URL yet/);
    assert.equal(await exists(`${dir}/data`), false, "the tool touched the data folder");
    // A URL file that answers nothing (a service that is not there) is no reason to open the files.
    await Deno.writeTextFile(`${dir}/embedded-url`, "postgres://postgres@127.0.0.1:1/postgres\n");
    await assert.rejects(() => openToolDatabase({}, dir), /held by a running service, which did not answer/);
    assert.equal(await exists(`${dir}/data`), false);
    service.release();

    // Nobody holds it: the tool opens the files itself (a stale URL file is ignored) and owns them meanwhile.
    const db = await openToolDatabase({}, dir);
    try {
      assert.match(db.description, /no service running/);
      assert.equal(await tryLockEmbeddedDatabase(dir), undefined, "a service could start beside the tool");
    } finally {
      await db.close();
    }
    const after = await tryLockEmbeddedDatabase(dir);
    assert.ok(after, "the tool released the lock");
    after.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
