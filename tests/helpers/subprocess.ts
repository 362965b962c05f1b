/**
 * Child processes for tests: a child Deno in a clean environment, run to
 * completion or spawned with its output kept line by line, and the service
 * started exactly as `deno task start` starts it (same permission flags, read
 * from deno.json), so that crash tests kill a real process and permission
 * mistakes show up here rather than in production.
 */
import { startTaskFlags } from "../../bench/start_task_flags.ts";

/** The flags of the `start` task, exactly (permissions and V8 settings). */
export const START_PERMISSIONS = startTaskFlags();

/** The project's root folder: the start task's relative permissions (.pglite, migrations) are relative to it. */
export const PROJECT_DIR = new URL("../../", import.meta.url).pathname;

/** Where and with what a child runs. */
export interface ChildOptions {
  /** Default: the project's root folder. */
  cwd?: string;
  /** Variables on top of the few a child Deno needs to find itself and its cache. */
  env?: Record<string, string>;
}

/** A clean environment for a child Deno: what it needs to find itself and its cache, plus `vars`. */
export function childEnv(vars: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...vars };
}

/**
 * The command for a child (this Deno unless `program` says otherwise), with
 * the clean environment and no stdin; a developer's shell settings or .env
 * never reach it.
 */
export function childCommand(
  args: string[],
  options: ChildOptions & { program?: string; stdout?: "piped" | "null"; stderr?: "piped" | "null" } = {},
): Deno.Command {
  return new Deno.Command(options.program ?? Deno.execPath(), {
    args,
    cwd: options.cwd ?? PROJECT_DIR,
    env: childEnv(options.env),
    clearEnv: true,
    stdin: "null",
    stdout: options.stdout ?? "piped",
    stderr: options.stderr ?? "piped",
  });
}

/** Runs a command to completion. */
export async function run(
  args: string[],
  options: ChildOptions & { program?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await childCommand(args, options).output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

/** A running child process whose output lines are kept and whose stdout lines can be awaited. */
export interface Child {
  process: Deno.ChildProcess;
  /** Its stdout lines (the array passed as `stdoutLines`, if one was). */
  lines: string[];
  /** Its stderr lines (the array passed as `stderrLines`, if one was). */
  stderrLines: string[];
  /**
   * Resolves with the first stdout line of this child that satisfies `match`;
   * rejects when stdout ends without one, or after `timeoutMs`.
   */
  waitFor(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Its whole stderr, once the stream has ended (that is, once the child has). */
  stderr(): Promise<string>;
  /** Resolves once both streams have ended and every line is kept. */
  drained: Promise<void>;
}

/**
 * Spawns a child Deno with piped output. A service restarted on the same
 * port passes the same `stdoutLines` and `stderrLines`, so that its log
 * reads across restarts.
 */
export function spawn(
  args: string[],
  options: ChildOptions & { stdoutLines?: string[]; stderrLines?: string[] } = {},
): Child {
  const process = childCommand(args, options).spawn();
  const lines = options.stdoutLines ?? [];
  const stderrLines = options.stderrLines ?? [];
  const firstLine = lines.length;
  const waiters = new Set<{ match: (line: string) => boolean; resolve: (line: string) => void; end: () => void }>();
  let ended = false;
  const stdoutDone = pumpLines(process.stdout, lines, (line) => {
    for (const waiter of waiters) {
      if (waiter.match(line)) waiter.resolve(line);
    }
  }).finally(() => {
    ended = true;
    for (const waiter of waiters) waiter.end();
  });
  const stderrDone = pumpLines(process.stderr, stderrLines);
  return {
    process,
    lines,
    stderrLines,
    waitFor(match, timeoutMs = 60_000) {
      const found = lines.slice(firstLine).find(match);
      if (found !== undefined) return Promise.resolve(found);
      if (ended) return Promise.reject(new Error("The child's stdout ended without a matching line."));
      const { promise, resolve, reject } = Promise.withResolvers<string>();
      const waiter = {
        match,
        resolve: (line: string) => {
          settle();
          resolve(line);
        },
        end: () => {
          settle();
          reject(new Error("The child's stdout ended without a matching line."));
        },
      };
      const timer = setTimeout(() => {
        settle();
        reject(new Error(`No matching line within ${timeoutMs} ms.`));
      }, timeoutMs);
      const settle = () => {
        clearTimeout(timer);
        waiters.delete(waiter);
      };
      waiters.add(waiter);
      return promise;
    },
    stderr: async () => {
      await stderrDone;
      return stderrLines.join("\n");
    },
    drained: Promise.all([stdoutDone, stderrDone]).then(() => {}),
  };
}

/** Appends each line of `stream` to `into` (the last one even without a newline), telling `onLine`. */
async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  into: string[],
  onLine?: (line: string) => void,
): Promise<void> {
  let rest = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    rest += text;
    const lines = rest.split("\n");
    rest = lines.pop()!;
    for (const line of lines) {
      into.push(line);
      onLine?.(line);
    }
  }
  if (rest !== "") {
    into.push(rest);
    onLine?.(rest);
  }
}

/** The first stderr line of `child` that satisfies `match` (warn and error log lines are there), polled. */
export async function stderrLine(child: Child, match: (line: string) => boolean, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const found = child.stderrLines.find(match);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`No matching stderr line within ${timeoutMs} ms.`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
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

/** A free loopback port (there is a small window in which another process could take it). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** What a service process needs. */
export interface ServerOptions {
  databaseUrl: string;
  signingKey: string;
  /** Kept across restarts, so that clients keep their URL. Default: a free port. */
  port?: number;
  /** More configuration variables (BODY_TIMEOUT_MS, ...). */
  env?: Record<string, string>;
  /** Shown in failure messages. */
  name?: string;
}

/**
 * A service process that can be killed and restarted on the same port. Its
 * stdout and stderr lines are kept across restarts, to be checked afterwards
 * (one JSON object per stdout line, never the signing key).
 */
export interface ServerProcess {
  url: string;
  port: number;
  /** The current process id (changes on restart). */
  pid: number;
  /** Every stdout line of every run. */
  stdout: string[];
  /** Every stderr line of every run. */
  stderr: string[];
  /** How many times it was killed with SIGKILL. */
  kills: number;
  /** How many times it was started. */
  starts: number;
  /** SIGKILL: no shutdown, no draining, in-flight work is cut wherever it is. */
  kill(): Promise<void>;
  /** Starts it again (after a kill) and waits until it listens. */
  restart(): Promise<void>;
  /** SIGTERM, then SIGKILL if it does not stop within a few seconds. Idempotent. */
  stop(): Promise<void>;
}

/** How long start-up may take (the first start type-checks nothing, but a cold cache compiles). */
const START_TIMEOUT_MS = 60_000;

/** Starts the service as `deno task start` does and resolves once it logs that it listens. */
export async function startServerProcess(options: ServerOptions): Promise<ServerProcess> {
  const port = options.port ?? freePort();
  const name = options.name ?? "server";
  const stdout: string[] = [];
  const stderr: string[] = [];
  let child: Child | undefined;
  let running = false;

  async function start(): Promise<void> {
    const started = spawn(["run", ...START_PERMISSIONS, "main.ts"], {
      env: {
        ...options.env,
        DATABASE_URL: options.databaseUrl,
        MAILGUN_WEBHOOK_SIGNING_KEY: options.signingKey,
        PORT: String(port),
        LISTEN_HOST: "127.0.0.1",
      },
      stdoutLines: stdout,
      stderrLines: stderr,
    });
    child = started;
    server.starts++;
    server.pid = started.process.pid;
    try {
      await started.waitFor((line) => line.includes('"msg":"listening"'), START_TIMEOUT_MS);
      running = true;
    } catch (error) {
      signalChild(started, "SIGKILL");
      const status = await started.process.status;
      await started.drained;
      const why = (error as Error).message;
      throw new Error(
        `The ${name} process did not listen (exit code ${status.code}). ${why} Its stderr: ${
          stderr.slice(-20).join("\n")
        }`,
      );
    }
  }

  async function end(signal: Deno.Signal): Promise<void> {
    if (!child || !running) return;
    running = false;
    const stopping = child;
    signalChild(stopping, signal);
    const timer = signal === "SIGKILL" ? undefined : setTimeout(() => signalChild(stopping, "SIGKILL"), 5_000);
    await stopping.process.status;
    clearTimeout(timer);
    await stopping.drained;
  }

  const server: ServerProcess = {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: 0,
    stdout,
    stderr,
    kills: 0,
    starts: 0,
    async kill() {
      await end("SIGKILL");
      server.kills++;
    },
    restart: start,
    stop: () => end("SIGTERM"),
  };
  await start();
  return server;
}

/** The service's log lines among a process's stderr lines (warn and error; the rest is Deno's or a crash's). */
export function stderrLogLines(stderr: string[]): string[] {
  return stderr.filter((line) => line.startsWith('{"time":'));
}

/**
 * Checks the log of a service process: every stdout line (info) and every
 * log line on stderr (warn, error) is one JSON object (so a hostile input
 * could not forge or split a line), and no line of stdout or stderr holds the
 * signing key. Returns the parsed log lines of both streams, in time order.
 */
export function checkLogs(server: ServerProcess, signingKey: string): Record<string, unknown>[] {
  const parsed: Record<string, unknown>[] = [];
  for (const line of [...server.stdout, ...stderrLogLines(server.stderr)]) {
    if (line.includes(signingKey)) throw new Error("A log line holds the signing key.");
    const value = JSON.parse(line);
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new Error(`Not a log object: ${line}`);
    }
    parsed.push(value);
  }
  for (const line of server.stderr) {
    if (line.includes(signingKey)) throw new Error("A stderr line holds the signing key.");
  }
  return parsed.sort((a, b) => String(a.time).localeCompare(String(b.time)));
}
