import { ConfigError, loadConfig } from "./src/config.ts";
import { flushLog, log } from "./src/log.ts";
import { startService } from "./src/start_service.ts";

/** Serves the Mailgun webhook until SIGINT or SIGTERM. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`Configuration error: ${error.message}`);
      Deno.exit(1);
    }
    throw error;
  }
  const service = await startService(config);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log("info", "shutting down", { signal });
    await service.shutdown();
    log("info", "stopped");
    flushLog();
    Deno.exit(0);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    try {
      Deno.addSignalListener(signal, () => stop(signal));
    } catch {
      // Some platforms (Deno Deploy, Windows for SIGTERM) have no such signal.
    }
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    flushLog();
    console.error(`Start-up failed: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
