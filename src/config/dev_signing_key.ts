import { toHex } from "../encoding/hex.ts";

/** The file, in the embedded database's folder, that keeps the development signing key. */
export const DEV_SIGNING_KEY_FILE = "dev-signing-key";

/**
 * The development signing key of this checkout: made once at random and
 * kept beside the embedded database, so that a developer can read it back
 * to sign test requests. Only ever used with the embedded database.
 */
export async function loadDevSigningKey(dir: string): Promise<{ key: string; path: string }> {
  const path = `${dir}/${DEV_SIGNING_KEY_FILE}`;
  try {
    const key = (await Deno.readTextFile(path)).trim();
    if (key !== "") return { key, path };
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const key = `dev-${toHex(crypto.getRandomValues(new Uint8Array(16)))}`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(path, key + "\n");
  return { key, path };
}
