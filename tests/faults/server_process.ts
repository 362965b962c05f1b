/**
 * The service as a real process, started exactly as `deno task start` starts
 * it (same permission flags, read from deno.json), so that crash tests kill a
 * real process and permission mistakes show up here rather than in production.
 */
import { startTaskFlags } from "../helpers/start_task_flags.ts";

export { startTaskFlags };

/** The repository root: the start task's relative permissions (.pglite, migrations) are relative to it. */
export const ROOT = new URL("../../", import.meta.url).pathname;

/** A free loopback port (there is a small window in which another process could take it). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** What a server process needs. */
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

/** Starts the service and resolves once it logs that it listens. */
export async function startServerProcess(options: ServerOptions): Promise<ServerProcess> {
  const port = options.port ?? freePort();
  const flags = startTaskFlags();
  const stdout: string[] = [];
  const stderr: string[] = [];
  let child: Deno.ChildProcess | undefined;
  let pumps: Promise<void>[] = [];
  let running = false;

  async function pump(stream: ReadableStream<Uint8Array>, into: string[], onLine?: (line: string) => void) {
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
    if (rest !== "") into.push(rest);
  }

  async function spawn(): Promise<void> {
    const { promise: listening, resolve, reject } = Promise.withResolvers<void>();
    const command = new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, "main.ts"],
      cwd: ROOT,
      env: {
        ...options.env,
        DATABASE_URL: options.databaseUrl,
        MAILGUN_WEBHOOK_SIGNING_KEY: options.signingKey,
        PORT: String(port),
        LISTEN_HOST: "127.0.0.1",
        NO_COLOR: "1",
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    });
    const process = command.spawn();
    child = process;
    server.starts++;
    server.pid = process.pid;
    pumps = [
      pump(process.stdout, stdout, (line) => {
        if (line.includes('"msg":"listening"')) resolve();
      }),
      pump(process.stderr, stderr),
    ];
    process.status.then((status) => reject(new Error(`${options.name ?? "server"} exited with ${status.code}`)));
    const timer = setTimeout(
      () => reject(new Error(`${options.name ?? "server"} did not listen in time`)),
      START_TIMEOUT_MS,
    );
    try {
      await listening;
      running = true;
    } catch (error) {
      try {
        process.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await process.status;
      await Promise.all(pumps);
      throw new Error(`${(error as Error).message}; stderr: ${stderr.slice(-20).join("\n")}`);
    } finally {
      clearTimeout(timer);
    }
  }

  async function end(signal: Deno.Signal): Promise<void> {
    if (!child || !running) return;
    running = false;
    const process = child;
    try {
      process.kill(signal);
    } catch {
      // Already gone.
    }
    if (signal !== "SIGKILL") {
      const timer = setTimeout(() => {
        try {
          process.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }, 5_000);
      await process.status;
      clearTimeout(timer);
    } else {
      await process.status;
    }
    await Promise.all(pumps);
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
    restart: spawn,
    stop: () => end("SIGTERM"),
  };
  await spawn();
  return server;
}

/**
 * Checks the log of a process: every stdout line is one JSON object (so a
 * hostile input could not forge or split a line), and no line of stdout or
 * stderr holds the signing key. Returns the parsed stdout lines.
 */
export function checkLogs(server: ServerProcess, signingKey: string): Record<string, unknown>[] {
  const parsed: Record<string, unknown>[] = [];
  for (const line of server.stdout) {
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
  return parsed;
}
