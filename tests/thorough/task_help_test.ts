/** `--help` on every task prints its usage and does nothing else: no migration, no service, no database. */
import assert from "node:assert/strict";
import { copy } from "../helpers/copy_project.ts";
import { PROJECT_DIR, run } from "../helpers/subprocess.ts";

const config = JSON.parse(await Deno.readTextFile(`${PROJECT_DIR}deno.json`));

/** The tasks that are `deno test` runs or checks: their --help is Deno's own. */
const DENO_OWN = ["test", "test:all", "check", "faults", "bench:request"];

Deno.test("every task in deno.json has a description, and deno task lists it", async () => {
  const listing = await run(["task"]);
  assert.equal(listing.code, 0, listing.stderr);
  const output = listing.stdout + listing.stderr;
  for (const [name, task] of Object.entries(config.tasks)) {
    const { description, command } = task as { description?: string; command?: string };
    assert.ok(typeof command === "string" && command.length > 0, `task ${name} has a command`);
    assert.ok(typeof description === "string" && description.length > 20, `task ${name} has a description`);
    assert.ok(output.includes(description), `deno task prints the description of ${name}`);
  }
});

Deno.test("--help and -h on every task print its usage, exit 0 at once, and touch no database", async () => {
  // A loopback port where a listener accepts and never answers: any attempt to use it would hang or fail.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  let accepted = 0;
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      accepted++;
      conns.push(conn);
    }
  })();
  const dir = await Deno.makeTempDir({ prefix: "mgwh-help-" });
  try {
    // A fresh clone (and the benchmarks): a --help that opened the embedded database would leave .pglite/ behind.
    await copy(dir);
    await Deno.copyFile(`${PROJECT_DIR}deno.json`, `${dir}/deno.json`);
    await Deno.mkdir(`${dir}/bench`);
    for await (const entry of Deno.readDir(`${PROJECT_DIR}bench`)) {
      if (entry.isFile) await Deno.copyFile(`${PROJECT_DIR}bench/${entry.name}`, `${dir}/bench/${entry.name}`);
    }
    // The benchmarks read the test payloads when loaded.
    await Deno.symlink(`${PROJECT_DIR}tests`, `${dir}/tests`);
    const tasks = Object.keys(config.tasks).filter((name) => !DENO_OWN.includes(name));
    assert.deepEqual(tasks.sort(), [
      "bench",
      "bench-unsettled",
      "bench:request-cpu",
      "erase",
      "follow",
      "migrate",
      "reconcile",
      "simulate",
      "sql",
      "start",
      "webhooks",
    ]);
    const mailgun = { MAILGUN_API_KEY: "key", MAILGUN_DOMAIN: "mg.example.com" };
    // --help against a database that never answers; -h with none set (the embedded database's case).
    const envs: Record<string, Record<string, string>> = {
      "--help": { ...mailgun, DATABASE_URL: `postgres://help:secret@127.0.0.1:${port}/nothing` },
      "-h": mailgun,
    };
    for (const name of tasks) {
      for (const flag of ["--help", "-h"]) {
        const started = performance.now();
        const result = await run(["task", "--quiet", name, flag], { cwd: dir, env: envs[flag] });
        const ms = performance.now() - started;
        const label = `deno task ${name} ${flag}`;
        assert.equal(result.code, 0, `${label}: ${result.stderr}`);
        assert.match(result.stdout, new RegExp(`^Usage: deno task (--quiet )?${name}\\b`, "m"), label);
        assert.doesNotMatch(result.stdout + result.stderr, /listening|Applied|Schema is up to date|CONNECT/, label);
        assert.ok(ms < 15_000, `${label} took ${Math.round(ms)} ms`);
      }
    }
    assert.equal(accepted, 0, "no task opened a connection to the database");
    // Nothing was written in the project either: no embedded database appeared for a --help.
    await assert.rejects(() => Deno.stat(`${dir}/.pglite`));
  } finally {
    listener.close();
    for (const conn of conns) conn.close();
    await accepting.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
