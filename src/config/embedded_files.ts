/** Where the embedded database keeps its files (git-ignored). */
export const EMBEDDED_DATABASE_DIR = ".pglite";
/** In the embedded database's folder: the URL at which the running service serves it, for the tools. */
export const EMBEDDED_URL_FILE = "embedded-url";
