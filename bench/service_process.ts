import { signedBody } from "./signed_bodies.ts";
import { startTaskFlags } from "./start_task_flags.ts";

const PROJECT = new URL("../", import.meta.url).pathname;
const HELLO_SERVER = new URL("./hello_server.ts", import.meta.url).pathname;
/** Tuning variables pass through to the service, so that a run can try other values. */
const PASSED_THROUGH = ["DB_POOL_MAX", "BATCH_MAX", "BATCH_IN_FLIGHT", "BATCH_GATHER_MS", "TOKEN_PRUNE_FIRST_DELAY_MS"];

/** A server the bench started: where it listens, its process, and how to stop it. */
export interface ServerProcess {
  url: string;
  pid: number;
  /** Milliseconds from spawning the process to its first 200. */
  coldStartMs: number;
  stop(): Promise<void>;
}

/** Starts the service exactly as `deno task start` does, on `databaseUrl`; resolves at its first 200. */
export async function startService(
  databaseUrl: string,
  key: string,
  options: {
    env?: Record<string, string>;
    /** Called with each line of the service's log; without it the log is discarded. */
    onLogLine?: (line: string) => void;
  } = {},
): Promise<ServerProcess> {
  const port = freePort();
  const spawnedAt = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...startTaskFlags(), "main.ts"],
    cwd: PROJECT,
    env: {
      DATABASE_URL: databaseUrl,
      MAILGUN_WEBHOOK_SIGNING_KEY: key,
      PORT: String(port),
      LISTEN_HOST: "127.0.0.1",
      ...passedThrough(),
      ...options.env,
    },
    stdin: "null",
    stdout: options.onLogLine ? "piped" : "null",
    stderr: "inherit",
  }).spawn();
  // Drained as it comes: a full pipe would stall the service's log writes.
  const drained = options.onLogLine ? readLines(child.stdout, options.onLogLine) : Promise.resolve();
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    pid: child.pid,
    coldStartMs: await firstOk(`${url}/v1/mailgun/webhook`, () => signedBody(key, 1, "delivered"), spawnedAt),
    stop: async () => {
      await stopChild(child);
      await drained;
    },
  };
}

/** Starts the hello-world yardstick (bench/hello_server.ts), with V8's defaults as the service runs. */
export async function startHelloServer(): Promise<ServerProcess> {
  const port = freePort();
  const spawnedAt = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net=127.0.0.1", HELLO_SERVER, String(port)],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    pid: child.pid,
    coldStartMs: await firstOk(url, () => "{}", spawnedAt),
    stop: () => stopChild(child),
  };
}

function passedThrough(): Record<string, string> {
  return Object.fromEntries(PASSED_THROUGH.flatMap((name) => {
    const value = Deno.env.get(name);
    return value === undefined ? [] : [[name, value]];
  }));
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** Polls with a POST until the first 200; returns ms since `since`. */
async function firstOk(url: string, body: () => string, since: number): Promise<number> {
  for (let tries = 0; tries < 10_000; tries++) {
    try {
      const response = await fetch(url, { method: "POST", body: body() });
      await response.body?.cancel();
      if (response.status === 200) return performance.now() - since;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`${url} never answered 200.`);
}

async function stopChild(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // Already gone.
  }
  await child.status;
}

async function readLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop() ?? "";
    for (const part of parts) onLine(part);
  }
  if (rest !== "") onLine(rest);
}
