/**
 * What a process has used so far, read from Linux's /proc. Deno reads /proc
 * only with --allow-all; `cat` needs no more than --allow-run.
 */

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = Number(
  new TextDecoder().decode(new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped" }).outputSync().stdout)
    .trim(),
) || 100;

function readProc(pid: number, file: string): string {
  const output = new Deno.Command("cat", { args: [`/proc/${pid}/${file}`], stdout: "piped", stderr: "null" })
    .outputSync();
  if (!output.success) throw new Error(`Cannot read /proc/${pid}/${file}: the process has ended.`);
  return new TextDecoder().decode(output.stdout);
}

/** CPU seconds (user + system, all threads) that the process has used since it started. */
export function cpuSeconds(pid: number): number {
  const stat = readProc(pid, "stat");
  // The command name (field 2) may hold spaces; the fields after it are plain numbers.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** Peak resident set size (VmHWM), MiB. */
export function peakRssMiB(pid: number): number {
  const kib = /VmHWM:\s+(\d+) kB/.exec(readProc(pid, "status"))?.[1];
  return Number(kib ?? 0) / 1024;
}
