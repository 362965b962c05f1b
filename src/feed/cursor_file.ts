/** Where `deno task follow` keeps its cursor between runs: one line, written whole or not at all. */

/** The cursor in `path`, or undefined when there is no file yet. */
export async function readCursorFile(path: string): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(path)).trim() || undefined;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * Writes `cursor` to `path` through a temporary file and a rename, so that a
 * follower killed mid-write leaves the previous cursor, never half of one.
 */
export async function writeCursorFile(path: string, cursor: string): Promise<void> {
  const slash = path.lastIndexOf("/");
  if (slash > 0) await Deno.mkdir(path.slice(0, slash), { recursive: true });
  const temporary = `${path}.tmp`;
  await Deno.writeTextFile(temporary, `${cursor}\n`);
  await Deno.rename(temporary, path);
}
