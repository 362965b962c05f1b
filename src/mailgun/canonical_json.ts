/** Deeper event-data is refused: Mailgun's is a few levels deep, and PostgreSQL's jsonb parser recurses. */
export const MAX_EVENT_DATA_DEPTH = 32;

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
export function canonicalJson(value: unknown, depth = 0): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
      return storableString(value);
    case "number":
      return Number.isFinite(value) ? JSON.stringify(value) : "null";
    case "boolean":
      return value ? "true" : "false";
    case "object": {
      if (depth >= MAX_EVENT_DATA_DEPTH) {
        throw new NotStorableError(`Nested deeper than ${MAX_EVENT_DATA_DEPTH} levels.`);
      }
      if (Array.isArray(value)) {
        return "[" + value.map((item) => canonicalJson(item, depth + 1)).join(",") + "]";
      }
      const record = value as Record<string, unknown>;
      const parts: string[] = [];
      for (const key of Object.keys(record).sort()) {
        parts.push(storableString(key) + ":" + canonicalJson(record[key], depth + 1));
      }
      return "{" + parts.join(",") + "}";
    }
    default:
      return "null";
  }
}

function storableString(value: string): string {
  if (value.includes("\0")) throw new NotStorableError("Contains a NUL character.");
  if (!value.isWellFormed()) throw new NotStorableError("Contains a lone surrogate.");
  return JSON.stringify(value);
}
