/**
 * What `Deno.cron` is to this service: a job's name, a 5-field schedule in
 * UTC, and its handler. Tests pass a fake one.
 */
export type CronScheduler = (name: string, schedule: string, handler: () => Promise<void>) => void;

type DenoCron = (name: string, schedule: string, handler: () => Promise<void>) => Promise<void>;

/**
 * `Deno.cron` when this runtime has it, else undefined. Deno Deploy has it
 * and runs each job once per schedule for the timeline, whatever the number
 * of instances. The Deno CLI has it only with `--unstable-cron` (or "cron" in
 * deno.json's `unstable`), and then runs it in each process.
 */
export function runtimeCron(): CronScheduler | undefined {
  const cron = (Deno as unknown as { cron?: DenoCron }).cron;
  if (typeof cron !== "function") return undefined;
  return (name, schedule, handler) => {
    // Its promise settles only when the job is closed: nothing to wait for.
    cron.call(Deno, name, schedule, handler).catch(() => {});
  };
}
