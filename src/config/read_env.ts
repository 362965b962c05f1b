/**
 * The one reader of the environment: the service and every tool declare the
 * variables they read as a zod schema (src/config/env_variables.ts has the
 * kinds) and get them through {@link readEnv}, so that a variable is
 * trimmed, defaulted and checked the same way everywhere, and a bad one is
 * named in the error.
 */
import type { z } from "zod";

/** Where variables come from: `Deno.env` in production, a plain map in tests. */
export type EnvSource = (name: string) => string | undefined;

/** A setting that stops start-up (or a tool); the message names the variable. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/**
 * Reads the variables `variables` declares (its keys are their names) from
 * `source`, the process environment by default: each trimmed, blank as
 * unset, then checked and defaulted by the schema. Throws a
 * {@link ConfigError} for the first bad one: its name, then the schema's
 * message (`PORT must be a whole number from 0 to 65535 (got "eighty").`).
 */
export function readEnv<S extends z.ZodObject>(
  variables: S,
  source: EnvSource = (name) => Deno.env.get(name),
): z.output<S> {
  const raw: Record<string, string | undefined> = {};
  for (const name of Object.keys(variables.shape)) {
    const value = source(name)?.trim();
    raw[name] = value === "" ? undefined : value;
  }
  const result = variables.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  throw new ConfigError(`${String(issue.path[0] ?? "The environment")} ${issue.message}`);
}

/**
 * Checks one setting that a command-line flag may give instead of its
 * variable (`--limit` or RECONCILE_LIMIT): `raw` through `schema`, a
 * {@link ConfigError} naming `label` when it does not pass.
 */
export function readSetting<S extends z.ZodType>(label: string, schema: S, raw: string | undefined): z.output<S> {
  const result = schema.safeParse(raw?.trim() === "" ? undefined : raw?.trim());
  if (result.success) return result.data;
  throw new ConfigError(`${label} ${result.error.issues[0].message}`);
}
