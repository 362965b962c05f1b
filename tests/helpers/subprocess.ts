import { startTaskFlags } from "./start_task_flags.ts";

/** The flags of the `start` task, exactly (permissions and V8 settings). */
export const START_PERMISSIONS = startTaskFlags();

/** The project's root folder. */
export const PROJECT_DIR = new URL("../../", import.meta.url).pathname;

/** A clean environment for a child Deno: what it needs to find itself and its cache, plus `vars`. */
export function childEnv(vars: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...vars };
}

/** Runs a command to completion. */
export async function run(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: options.cwd ?? PROJECT_DIR,
    env: childEnv(options.env),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

/** A running child process whose stdout lines can be awaited. */
export interface Child {
  process: Deno.ChildProcess;
  lines: string[];
  /** Resolves with the first stdout line that satisfies `match`. */
  waitFor(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  stderr(): Promise<string>;
}

/** Spawns a child Deno with piped output. */
export function spawn(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Child {
  const process = new Deno.Command(Deno.execPath(), {
    args,
    cwd: options.cwd ?? PROJECT_DIR,
    env: childEnv(options.env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const waiters: { match: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  (async () => {
    let buffer = "";
    for await (const chunk of process.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        lines.push(line);
        for (const waiter of [...waiters]) {
          if (waiter.match(line)) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(line);
          }
        }
      }
    }
  })();
  const stderrText = new Response(process.stderr).text();
  return {
    process,
    lines,
    waitFor(match, timeoutMs = 60_000) {
      const found = lines.find(match);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching line within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          match,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
      });
    },
    stderr: () => stderrText,
  };
}

/** Sends a signal to a child that may have exited already. */
export function signalChild(child: Child, signal: Deno.Signal): void {
  try {
    child.process.kill(signal);
  } catch {
    // Already gone.
  }
}

/** Stops a child whose test failed and throws `error` again with the child's stderr (which ends when it does). */
export async function failWithStderr(child: Child, error: unknown): Promise<never> {
  signalChild(child, "SIGKILL");
  throw new Error(`${(error as Error).message}\nservice stderr: ${await child.stderr()}`, { cause: error });
}
