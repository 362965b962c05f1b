/** Deeper event-data is refused: Mailgun's is a few levels deep, and PostgreSQL's jsonb parser recurses. */
export const MAX_EVENT_DATA_DEPTH = 32;

/**
 * What jsonb cannot hold, as JSON.stringify writes it: `\u0000`, or a lone
 * surrogate escaped as `\ud800`-`\udfff` (paired surrogates are written raw),
 * preceded by an even number of backslashes (an odd number escapes the
 * backslash itself).
 */
const UNSTORABLE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/;

/** Thrown when a value cannot be stored as jsonb. */
export class NotStorableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotStorableError";
  }
}

/**
 * Serialises JSON with object keys sorted and no whitespace, so that the
 * same event-data always hashes the same way however it was formatted.
 * Refuses what PostgreSQL's jsonb cannot hold: NUL characters, lone
 * surrogates, and nesting deeper than {@link MAX_EVENT_DATA_DEPTH}.
 */
export function canonicalJson(value: unknown): string {
  const json = serialize(value, 0);
  if (UNSTORABLE.test(json)) throw new NotStorableError("Contains a NUL character or a lone surrogate.");
  return json;
}

function serialize(value: unknown, depth: number): string {
  if (typeof value !== "object" || value === null) {
    // Strings are escaped natively; NaN, Infinity and what JSON has no word for become null.
    return JSON.stringify(value) ?? "null";
  }
  if (depth >= MAX_EVENT_DATA_DEPTH) throw new NotStorableError(`Nested deeper than ${MAX_EVENT_DATA_DEPTH} levels.`);
  if (Array.isArray(value)) {
    let json = "[";
    for (let i = 0; i < value.length; i++) json += (i === 0 ? "" : ",") + serialize(value[i], depth + 1);
    return json + "]";
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let json = "{";
  for (let i = 0; i < keys.length; i++) {
    json += (i === 0 ? "" : ",") + JSON.stringify(keys[i]) + ":" + serialize(record[keys[i]], depth + 1);
  }
  return json + "}";
}
