/**
 * postgres.js, told to require TLS by a server that answers PostgreSQL's
 * SSLRequest with "N", starts a TLS handshake anyway; the server reads it as
 * a broken start-up packet and hangs up, and all that reaches the operator is
 * "ECONNRESET ... before secure TLS connection was established", which does
 * not say why. On that failure, this asks the server itself.
 */

import { withTimeout } from "./with_timeout.ts";

/** PostgreSQL's SSLRequest: length 8, then the code 80877103. */
const SSL_REQUEST = new Uint8Array([0, 0, 0, 8, 4, 210, 22, 47]);
/** Bound on the question: it is asked only after a connect failed. */
const PROBE_TIMEOUT_MS = 3_000;
const TLS_HANDSHAKE_CUT = /before secure TLS connection was established/i;

/**
 * When `error` is a TLS handshake cut short by the server at `host:port` and
 * that server answers that it offers no TLS, a message that says so and what
 * to do; otherwise undefined. Never throws.
 */
export async function explainTlsRefusal(error: unknown, hostPort: string): Promise<string | undefined> {
  if (!TLS_HANDSHAKE_CUT.test(String((error as Error)?.message ?? ""))) return undefined;
  const separator = hostPort.lastIndexOf(":");
  const hostname = hostPort.slice(0, separator).replace(/^\[(.*)\]$/, "$1");
  const port = Number(hostPort.slice(separator + 1));
  if (hostname === "" || !Number.isInteger(port)) return undefined;
  if (await answerToSslRequest(hostname, port) !== "N") return undefined;
  return `The database server at ${hostPort} offers no TLS, and this connection requires it (sslmode or ` +
    `PGSSLMODE require, verify-ca or verify-full): enable TLS on the server, or connect through a network you ` +
    `trust with sslmode=disable.`;
}

/** The server's one-byte answer to an SSLRequest: "S" (TLS offered), "N" (none), or undefined if none came. */
async function answerToSslRequest(hostname: string, port: number): Promise<string | undefined> {
  let conn: Deno.TcpConn | undefined;
  try {
    const attempt = (async () => {
      conn = await Deno.connect({ hostname, port });
      await conn.write(SSL_REQUEST);
      const answer = new Uint8Array(1);
      const read = await conn.read(answer);
      return read === 1 ? String.fromCharCode(answer[0]) : undefined;
    })();
    return await withTimeout(attempt, PROBE_TIMEOUT_MS, () => new Error("No answer to the SSLRequest."));
  } catch {
    return undefined;
  } finally {
    try {
      conn?.close();
    } catch {
      // Already closed by the server.
    }
  }
}
