import { DEV_SIGNING_KEY_FILE } from "../config/dev_signing_key.ts";
import { EMBEDDED_DATABASE_DIR } from "../config/embedded_files.ts";

/** The key a simulation signs with, and where it came from (never printed itself). */
interface SimulateKey {
  key: string;
  source: string;
}

/**
 * The key the local service verifies with: `configuredKeys[0]`, the first of
 * MAILGUN_WEBHOOK_SIGNING_KEY (the one Mailgun signs with during a
 * rotation), else the development key that `deno task start` made in the
 * embedded database's folder. Throws with a next step when there is neither.
 */
export async function simulateSigningKey(
  configuredKeys: string[],
  dir: string = EMBEDDED_DATABASE_DIR,
): Promise<SimulateKey> {
  if (configuredKeys.length > 0) return { key: configuredKeys[0], source: "MAILGUN_WEBHOOK_SIGNING_KEY" };
  const path = `${dir}/${DEV_SIGNING_KEY_FILE}`;
  try {
    const key = (await Deno.readTextFile(path)).trim();
    if (key !== "") return { key, source: `the development key in ${path}` };
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  throw new Error(
    `No signing key: set MAILGUN_WEBHOOK_SIGNING_KEY, or run deno task start once to make the development key (${path}).`,
  );
}
