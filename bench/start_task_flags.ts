/** The project's root folder: the start task's relative paths (.pglite, migrations) are relative to it. */
const ROOT = new URL("../", import.meta.url).pathname;

/**
 * The flags of the `start` task (its permissions), read from
 * deno.json so that tests and the benchmark never drift from what users run;
 * all but `--env-file`.
 */
export function startTaskFlags(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)) as { tasks: Record<string, string> };
  const words = config.tasks.start.trim().split(/\s+/);
  if (words[0] !== "deno" || words[1] !== "run" || words.at(-1) !== "main.ts") {
    throw new Error(`Unexpected start task: ${config.tasks.start}`);
  }
  const flags = words.slice(2, -1);
  if (flags.some((flag) => !flag.startsWith("--"))) throw new Error(`Unexpected start task: ${config.tasks.start}`);
  // Tests set the child's whole environment: a developer's .env must not leak into it.
  return flags.filter((flag) => flag !== "--env-file");
}
