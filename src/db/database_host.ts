/**
 * `host:port` of a postgres:// URL (the port PostgreSQL's default when the
 * URL names none): what a message says of where the database is, never the
 * user or the password.
 */
export function databaseHost(url: string): string {
  try {
    const parsed = new URL(url);
    const host = parsed.hostname || decodeURIComponent(parsed.searchParams.get("host") ?? "") || "localhost";
    return `${host}:${parsed.port || "5432"}`;
  } catch {
    return "an unparsable DATABASE_URL";
  }
}
