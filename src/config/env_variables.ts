/**
 * The kinds of environment variable, as zod schemas of their text (trimmed,
 * absent when blank: see readEnv). Each message follows the variable's name
 * (`PORT must be ...`) and says what was expected; it quotes the value only
 * where the value is no secret.
 */
import { z } from "zod";

const TRUE = ["true", "1", "yes", "on"];
const FALSE = ["false", "0", "no", "off"];

/** Text, or undefined when unset. */
export function textVariable() {
  return z.string().optional();
}

/** A whole number from `min` to `max`, or `fallback` when unset. */
export function wholeNumberVariable(fallback: number, min: number, max: number) {
  return z.string()
    .refine((raw) => isWholeNumber(raw, min, max), {
      error: (issue) => `must be a whole number from ${min} to ${max} (got "${String(issue.input)}").`,
    })
    .transform(Number)
    .default(fallback);
}

/** `true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off` (any case), or `fallback` when unset. */
export function booleanVariable(fallback: boolean) {
  return z.string()
    .transform((raw) => raw.toLowerCase())
    .refine((raw) => TRUE.includes(raw) || FALSE.includes(raw), {
      error: (issue) => `must be true or false (got "${String(issue.input)}").`,
    })
    .transform((raw) => TRUE.includes(raw))
    .default(fallback);
}

/** One of `values` (any case, read in lower case), or undefined when unset. */
export function choiceVariable<const T extends readonly [string, ...string[]]>(values: T) {
  return z.string()
    .transform((raw) => raw.toLowerCase())
    .pipe(z.enum(values, {
      error: (issue) => `must be one of ${values.join(", ")} (got "${String(issue.input)}").`,
    }))
    .optional();
}

/**
 * A comma-separated list of secret keys, each of at least `minLength`
 * characters (never quoted in a message); empty when unset, an error when
 * set but holding none.
 */
export function keysVariable(minLength: number, tooShort: string) {
  return z.string()
    .transform((raw) => raw.split(",").map((key) => key.trim()).filter((key) => key !== ""))
    .pipe(
      z.array(z.string().min(minLength, { error: tooShort }))
        .min(1, { error: "holds no key (expected one key, or several separated by commas)." }),
    )
    .default([]);
}

/** Whether `raw` is a whole number from `min` to `max`. */
function isWholeNumber(raw: string, min: number, max: number): boolean {
  const value = Number(raw);
  return /^\d+$/.test(raw) && value >= min && value <= max;
}
