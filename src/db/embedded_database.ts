import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { lockEmbeddedDatabase } from "./embedded_lock.ts";

/** A running embedded PostgreSQL, reachable over the wire on loopback. */
interface EmbeddedDatabase {
  /** A postgres:// URL for postgres.js (one connection: PGlite has one session). */
  url: string;
  close(): Promise<void>;
}

/**
 * Starts PGlite on `dataDir` (a folder, or `memory://`) and serves it on a
 * free loopback port, so that the service talks to it exactly as it talks
 * to a real PostgreSQL.
 */
export async function startEmbeddedDatabase(dataDir: string): Promise<EmbeddedDatabase> {
  if (!dataDir.startsWith("memory://")) await Deno.mkdir(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir);
  // PGlite has one session; the socket server queues statements from its
  // connections into it. Extra connections are for tools (psql, reconcile)
  // that send single statements, never for interleaved transactions.
  const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 4 });
  await server.start();
  const port = server.getServerConn().split(":").pop();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async close() {
      await server.stop();
      await db.close();
    },
  };
}

/**
 * Opens the embedded database kept in `dir` (its files in `dir/data`) as its
 * only owner: fails (EmbeddedDatabaseBusyError) before touching
 * anything when another process holds it. Closing releases it.
 */
export async function openOwnedEmbeddedDatabase(dir: string): Promise<EmbeddedDatabase> {
  const lock = await lockEmbeddedDatabase(dir);
  try {
    const db = await startEmbeddedDatabase(`${dir}/data`);
    return {
      url: db.url,
      async close() {
        try {
          await db.close();
        } finally {
          lock.release();
        }
      },
    };
  } catch (error) {
    lock.release();
    throw error;
  }
}
