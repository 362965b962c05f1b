/**
 * The one reader of the environment: the service and every tool get their
 * settings through it, so that a variable is trimmed, defaulted and checked
 * the same way everywhere, and a bad one is named in the error.
 */

/** Where variables come from: `Deno.env` in production, a plain map in tests. */
export type EnvSource = (name: string) => string | undefined;

/** A setting that stops start-up (or a tool); the message names the variable. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Typed access to the environment; every method throws a {@link ConfigError} naming the variable. */
export interface Env {
  /** The value, trimmed; undefined when unset or blank. */
  text(name: string): string | undefined;
  /** A whole number from `min` to `max`, or `fallback` when unset. */
  integer(name: string, fallback: number, min: number, max: number): number;
  /** `true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off`, or `fallback` when unset. */
  boolean(name: string, fallback: boolean): boolean;
  /** A comma-separated list of keys; empty when unset, an error when set but holding none. */
  keys(name: string): string[];
}

/** Reads `source` (the process environment by default). */
export function readEnv(source: EnvSource = (name) => Deno.env.get(name)): Env {
  const text = (name: string) => {
    const value = source(name)?.trim();
    return value === "" ? undefined : value;
  };
  return {
    text,
    integer: (name, fallback, min, max) => wholeNumber(name, text(name), fallback, min, max),
    boolean(name, fallback) {
      const raw = text(name)?.toLowerCase();
      if (raw === undefined) return fallback;
      if (["true", "1", "yes", "on"].includes(raw)) return true;
      if (["false", "0", "no", "off"].includes(raw)) return false;
      throw new ConfigError(`${name} must be true or false (got "${raw}").`);
    },
    keys(name) {
      const raw = text(name);
      if (raw === undefined) return [];
      const keys = raw.split(",").map((key) => key.trim()).filter((key) => key !== "");
      if (keys.length === 0) {
        throw new ConfigError(`${name} holds no key (expected one key, or several separated by commas).`);
      }
      return keys;
    },
  };
}

/**
 * A whole number from `min` to `max`, or `fallback` when `raw` is undefined;
 * `label` names the variable or flag it came from.
 */
export function wholeNumber(
  label: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    throw new ConfigError(`${label} must be a whole number from ${min} to ${max} (got "${raw}").`);
  }
  return value;
}
