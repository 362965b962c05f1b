/** The project's root folder: the start task's relative paths (.pglite, migrations) are relative to it. */
const ROOT = new URL("../", import.meta.url).pathname;

/**
 * The flags of the `start` task (its permissions), read from
 * deno.json so that tests and the benchmark never drift from what users run;
 * all but `--env-file`.
 */
export function startTaskFlags(): string[] {
  const command = taskCommand("start");
  const words = command.trim().split(/\s+/);
  if (words[0] !== "deno" || words[1] !== "run" || words.at(-1) !== "main.ts") {
    throw new Error(`Unexpected start task: ${command}`);
  }
  const flags = words.slice(2, -1);
  if (flags.some((flag) => !flag.startsWith("--"))) throw new Error(`Unexpected start task: ${command}`);
  // Tests set the child's whole environment: a developer's .env must not leak into it.
  return flags.filter((flag) => flag !== "--env-file");
}

/** A task's command in deno.json, whether written as a string or as `{ description, command }`. */
export function taskCommand(name: string): string {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)) as {
    tasks: Record<string, string | { command: string }>;
  };
  const task = config.tasks[name];
  if (task === undefined) throw new Error(`deno.json has no task ${name}.`);
  return typeof task === "string" ? task : task.command;
}
