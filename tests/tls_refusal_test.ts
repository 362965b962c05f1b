/**
 * A server that offers no TLS, met by a connection that requires it: the
 * message says so (issue 21), instead of "ECONNRESET ... before secure TLS
 * connection was established". The server is a loopback stand-in that speaks
 * the first step of PostgreSQL's protocol as a server without TLS does:
 * it answers the SSLRequest with "N", then hangs up on the TLS handshake that
 * follows (it expected a start-up packet).
 */
import assert from "node:assert/strict";
import { explainTlsRefusal } from "../src/db/tls_refusal.ts";
import { run } from "./helpers/subprocess.ts";

/** A loopback server answering every SSLRequest with `answer`, then closing. Returns its port and a stop. */
function sslAnswering(answer: "N" | "S"): { port: number; stop: () => Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of listener) {
      (async () => {
        const request = new Uint8Array(8);
        try {
          if ((await conn.read(request)) === 8) await conn.write(new TextEncoder().encode(answer));
          // Whatever follows (a TLS ClientHello) is not a start-up packet: hang up, as PostgreSQL does.
          await conn.read(new Uint8Array(1024));
        } catch {
          // The client went away first.
        } finally {
          try {
            conn.close();
          } catch {
            // Closed already.
          }
        }
      })();
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async stop() {
      listener.close();
      await serving.catch(() => {});
    },
  };
}

Deno.test("a server without TLS, met with sslmode=require: migrate says the server offers no TLS", async () => {
  const server = sslAnswering("N");
  try {
    const url = `postgres://someone@127.0.0.1:${server.port}/api?sslmode=require`;
    const result = await run(["task", "--quiet", "migrate"], { env: { DATABASE_URL: url } });
    assert.equal(result.code, 1, result.stdout);
    assert.match(result.stderr, new RegExp(`server at 127\\.0\\.0\\.1:${server.port} offers no TLS`));
    assert.doesNotMatch(result.stderr, /ECONNRESET/);
  } finally {
    await server.stop();
  }
});

Deno.test("the explanation is given only when the server itself answers that it has no TLS", async () => {
  const cut = Object.assign(
    new Error("Client network socket disconnected before secure TLS connection was established"),
    {
      code: "ECONNRESET",
    },
  );
  const withoutTls = sslAnswering("N");
  const withTls = sslAnswering("S");
  try {
    assert.match(String(await explainTlsRefusal(cut, `127.0.0.1:${withoutTls.port}`)), /offers no TLS/);
    // A server that offers TLS and still cut the handshake: something else, not explained away.
    assert.equal(await explainTlsRefusal(cut, `127.0.0.1:${withTls.port}`), undefined);
    // Another failure: not a question for the server.
    assert.equal(
      await explainTlsRefusal(new Error("password authentication failed"), `127.0.0.1:${withoutTls.port}`),
      undefined,
    );
  } finally {
    await withoutTls.stop();
    await withTls.stop();
  }
});
