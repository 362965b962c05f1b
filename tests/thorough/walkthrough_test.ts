/**
 * The README's walk-through (and docs/reconcile.md's), as a newcomer runs it in a fresh clone against
 * the embedded default: `deno task start`, `deno task sql` to insert a
 * document, `deno task simulate delivered`, then `deno task reconcile`
 * (against a local fake of Mailgun's Logs API) while the service runs and after
 * it stopped.
 */
import assert from "node:assert/strict";
import { copy } from "../helpers/copy_project.ts";
import { startFakeMailgunLogs } from "../helpers/fake_mailgun_logs.ts";
import { eventData } from "../helpers/mailgun.ts";
import { failWithStderr, run, signalChild, spawn } from "../helpers/subprocess.ts";

Deno.test("fresh clone: start, insert a document, simulate delivered, reconcile; on the embedded default", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mgwh-walkthrough-" });
  const mailgun = startFakeMailgunLogs();
  await copy(dir);
  const child = spawn(["task", "start"], { cwd: dir, env: { PORT: "0" } });
  try {
    const url = JSON.parse(await child.waitFor((line) => line.includes('"msg":"listening"'), 120_000)).url as string;
    const messageId = "<20260101120000.4f1c2a9e8b7d6c5a@mg.comprobify.test>";
    const insert = await run([
      "task",
      "sql",
      `insert into documents (email_message_id, email_status) values ('${messageId}', 'SENT') returning id`,
    ], { cwd: dir });
    assert.equal(insert.code, 0, insert.stderr);
    assert.match(insert.stdout, /INSERT 1/);

    const simulate = await run(["task", "simulate", "delivered", messageId, "--url", url], { cwd: dir });
    assert.equal(simulate.code, 0, simulate.stderr + simulate.stdout);
    assert.match(simulate.stdout, /signed with the development key in \.pglite\/dev-signing-key/);
    assert.match(simulate.stdout, /^200 \{"ok":true,"outcome":"applied"\}$/m);

    const select = await run(["task", "sql", "select email_status from documents"], { cwd: dir });
    assert.equal(select.code, 0, select.stderr);
    assert.match(select.stdout, /DELIVERED/);

    // A second document whose events never came: reconcile finds them at "Mailgun".
    const lost = "<20260101120500.9a8b7c6d5e4f3a2b@mg.comprobify.test>";
    await run(["task", "sql", `insert into tenants (email_message_id, email_status) values ('${lost}', 'SENT')`], {
      cwd: dir,
    });
    mailgun.add(
      eventData("temporary", lost, { timestamp: Date.UTC(2026, 0, 1, 12, 6) / 1000 }),
      eventData("permanent", lost, { timestamp: Date.UTC(2026, 0, 1, 20, 6) / 1000 }),
    );
    const env = {
      MAILGUN_API_KEY: mailgun.apiKey,
      MAILGUN_DOMAIN: mailgun.domain,
      MAILGUN_API_BASE_URL: mailgun.url,
    };
    // The ids were sent on 2026-01-01: let the window reach them whatever today is.
    const window = ["--max-age", "100000d"];
    const running = await run(["task", "reconcile", ...window], { cwd: dir, env });
    assert.equal(running.code, 0, running.stderr + running.stdout);
    assert.match(running.stdout, /embedded database of the running service/);
    assert.match(running.stdout, /Events found: 2, applied: 2, duplicates skipped: 0/);

    child.process.kill("SIGTERM");
    assert.equal((await child.process.status).code, 0);
    const stopped = await run(["task", "reconcile", ...window], { cwd: dir, env });
    assert.equal(stopped.code, 0, stopped.stderr + stopped.stdout);
    assert.match(stopped.stdout, /no service running/);
    // The tenant is FAILED now: nothing is left to reconcile, and nothing was applied twice.
    assert.match(stopped.stdout, /Rows checked: 0/);
    const trail = await run(["task", "sql", "select type from email_events order by event_timestamp"], { cwd: dir });
    assert.equal(trail.code, 0, trail.stderr);
    assert.deepEqual(trail.stdout.match(/EMAIL_\w+/g), ["EMAIL_TEMP_FAILED", "EMAIL_FAILED", "EMAIL_DELIVERED"]);
  } catch (error) {
    await failWithStderr(child, error);
  } finally {
    signalChild(child, "SIGKILL");
    await child.process.status;
    await mailgun.close();
    await Deno.remove(dir, { recursive: true });
  }
});
