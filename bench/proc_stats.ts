/**
 * What a process has used so far, read from Linux's /proc. Deno reads /proc
 * only with --allow-all; `cat` needs no more than --allow-run.
 */

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
export const TICKS_PER_SECOND = Number(
  new TextDecoder().decode(new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped" }).outputSync().stdout)
    .trim(),
) || 100;

function readProc(pid: number, file: string): string {
  const output = new Deno.Command("cat", { args: [`/proc/${pid}/${file}`], stdout: "piped", stderr: "null" })
    .outputSync();
  if (!output.success) throw new Error(`Cannot read /proc/${pid}/${file}: the process has ended.`);
  return new TextDecoder().decode(output.stdout);
}

/**
 * Reads several /proc files in one process (a server's children can number a
 * hundred): each file's text, or undefined for one that could not be read (its
 * process has ended).
 */
export function readProcFiles(paths: string[]): (string | undefined)[] {
  // Each file is followed by a NUL, a failed one is "\x01" then NUL: /proc text holds neither.
  const script = 'for f do if c=$(cat "$f" 2>/dev/null); then printf "%s\\0" "$c"; else printf "\\1\\0"; fi; done';
  const output = new Deno.Command("sh", { args: ["-c", script, "sh", ...paths], stdout: "piped", stderr: "null" })
    .outputSync();
  const parts = new TextDecoder().decode(output.stdout).split("\0").slice(0, paths.length);
  return paths.map((_, i) => (parts[i] === undefined || parts[i] === "\x01" ? undefined : parts[i]));
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

/** Resident set size now (VmRSS), MiB. */
export function rssMiB(pid: number): number {
  const kib = /VmRSS:\s+(\d+) kB/.exec(readProc(pid, "status"))?.[1];
  return Number(kib ?? 0) / 1024;
}
