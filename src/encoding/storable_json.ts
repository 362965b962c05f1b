/** Deeper event-data is refused: Mailgun's is a few levels deep, and PostgreSQL's jsonb parser recurses. */
const MAX_EVENT_DATA_DEPTH = 32;

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
 * Serialises event-data for PostgreSQL's jsonb, refusing what jsonb cannot
 * hold: NUL characters, lone surrogates, and nesting deeper than
 * {@link MAX_EVENT_DATA_DEPTH}. Key order and spacing do not matter: jsonb
 * normalises both, and the token is bound to the jsonb form.
 */
export function storableJson(value: unknown): string {
  checkDepth(value, 0);
  const json = JSON.stringify(value) ?? "null";
  // Most event-data has no escape at all: one search for `\u` spares the regular expression's scan.
  if (json.includes("\\u") && UNSTORABLE.test(json)) {
    throw new NotStorableError("Contains a NUL character or a lone surrogate.");
  }
  return json;
}

function checkDepth(value: unknown, depth: number): void {
  if (typeof value !== "object" || value === null) return;
  if (depth >= MAX_EVENT_DATA_DEPTH) throw new NotStorableError(`Nested deeper than ${MAX_EVENT_DATA_DEPTH} levels.`);
  if (Array.isArray(value)) {
    for (const item of value) checkDepth(item, depth + 1);
    return;
  }
  for (const key in value) checkDepth((value as Record<string, unknown>)[key], depth + 1);
}
