/** In the embedded database's folder: held (an exclusive file lock) by the one process that opened its files. */
const EMBEDDED_LOCK_FILE = "owner.lock";

/** Another process holds the embedded database's files. */
export class EmbeddedDatabaseBusyError extends Error {
  constructor(dir: string) {
    super(
      `The embedded database in ${dir} is already in use by another process (a running deno task start, or a ` +
        `tool such as deno task sql): stop it first, or set DATABASE_URL to use a PostgreSQL server.`,
    );
    this.name = "EmbeddedDatabaseBusyError";
  }
}

/** The lock on an embedded database's folder; the operating system also releases it when the process exits. */
interface EmbeddedLock {
  release(): void;
}

/**
 * Takes the exclusive lock on `dir` without waiting: PGlite's files must be
 * opened by one process only (a second one would see another database, and
 * could corrupt it). Resolves `undefined` when another process holds it.
 */
export async function tryLockEmbeddedDatabase(dir: string): Promise<EmbeddedLock | undefined> {
  await Deno.mkdir(dir, { recursive: true });
  const file = await Deno.open(`${dir}/${EMBEDDED_LOCK_FILE}`, { read: true, write: true, create: true });
  let locked = false;
  try {
    locked = await file.tryLock(true);
  } finally {
    if (!locked) file.close();
  }
  if (!locked) return undefined;
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      file.close();
    },
  };
}

/** Like {@link tryLockEmbeddedDatabase}, but throws {@link EmbeddedDatabaseBusyError} when it is held. */
export async function lockEmbeddedDatabase(dir: string): Promise<EmbeddedLock> {
  const lock = await tryLockEmbeddedDatabase(dir);
  if (lock === undefined) throw new EmbeddedDatabaseBusyError(dir);
  return lock;
}
