import { z } from "zod";
import { type EnvSource, readEnv } from "./read_env.ts";

/** Shortest and longest Standard Webhooks secret, in bytes once decoded (the specification's range). */
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;

const SECRET_PROBLEM = `must be a Standard Webhooks secret: whsec_ and the base64 of ${MIN_SECRET_BYTES} to ` +
  `${MAX_SECRET_BYTES} random bytes (e.g. whsec_$(openssl rand -base64 32)).`;

/**
 * FOLLOW_SECRET, the key `deno task follow --forward` signs with: `whsec_`
 * and base64, as Standard Webhooks libraries take it. Never quoted in a
 * message.
 */
const followVariables = z.object({
  FOLLOW_SECRET: z.string()
    .transform((raw, context) => {
      const key = decodeSecret(raw);
      if (key === undefined) {
        context.addIssue({ code: "custom", message: SECRET_PROBLEM });
        return z.NEVER;
      }
      return key;
    })
    .optional(),
});

/** What `deno task follow` reads from the environment (besides the database's variables). */
export interface FollowSettings {
  /** The signing key's bytes (FOLLOW_SECRET decoded); unset: --forward is refused. */
  secret?: Uint8Array;
}

/** Reads FOLLOW_SECRET; throws a ConfigError naming it when it is not a secret. */
export function loadFollowSettings(source?: EnvSource): FollowSettings {
  return { secret: readEnv(followVariables, source).FOLLOW_SECRET };
}

function decodeSecret(raw: string): Uint8Array | undefined {
  const match = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(raw);
  if (match === null) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.from(atob(match[1]), (char) => char.charCodeAt(0));
  } catch {
    return undefined;
  }
  return bytes.length >= MIN_SECRET_BYTES && bytes.length <= MAX_SECRET_BYTES ? bytes : undefined;
}
