/**
 * A PostgreSQL array literal for text or numeric values, e.g. `{"a","b\"c",NULL}`.
 *
 * postgres.js serialises JS arrays only once it has fetched the server's
 * array types on a connection; a statement sent on a connection still
 * fetching them went out as `'' + array` ("malformed array literal"). A
 * literal built here, cast in SQL (`::text[]`), is the same on every
 * connection. It is a parameter value, never SQL text.
 */
export function pgArrayLiteral(values: readonly (string | number | null)[]): string {
  let literal = "{";
  for (let i = 0; i < values.length; i++) {
    if (i > 0) literal += ",";
    const value = values[i];
    if (value === null) literal += "NULL";
    else if (typeof value === "number") literal += String(value);
    else literal += '"' + value.replace(/[\\"]/g, "\\$&") + '"';
  }
  return literal + "}";
}
