/** What a `deno task bench` run was asked for, from its arguments. */
export interface BenchOptions {
  /** A few seconds, for CI: checks that it all works. */
  smoke: boolean;
  /** The scale figures (large tables, pruning under load) instead of the connection levels. */
  scale: boolean;
  /** Latency at a fixed rate and memory under overload (issue 22, point 4) instead of the connection levels. */
  latency: boolean;
  /** Multiplies the scale run's table sizes (1: 10,000,000 documents and tokens). */
  scaleFactor: number;
  /** Connection counts to drive. */
  levels: number[];
  /** Rounds per level; a level's figures are the rounds' medians. */
  rounds: number;
  /** Milliseconds per drive, and per pgbench run. */
  durationMs: number;
}

/** Reads `--smoke`, `--scale`, `--latency`, `--scale-factor F`, `--levels 8,32`, `--rounds N` and `--seconds S`. */
export function parseBenchOptions(args: string[]): BenchOptions {
  const value = (name: string) => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const next = args[i + 1];
    if (next === undefined || next.startsWith("--")) throw new Error(`${name} needs a value.`);
    return next;
  };
  const number = (name: string) => {
    const text = value(name);
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got "${text}".`);
    return n;
  };
  const known = ["--smoke", "--scale", "--latency", "--scale-factor", "--levels", "--rounds", "--seconds"];
  const unknown = args.filter((arg) => arg.startsWith("--") && !known.includes(arg));
  if (unknown.length > 0) throw new Error(`Unknown option ${unknown[0]}; known: ${known.join(", ")}.`);
  const smoke = args.includes("--smoke");
  const levels = value("--levels")?.split(",").map(Number);
  if (levels?.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error("--levels takes connection counts: 8,32.");
  return {
    smoke,
    scale: args.includes("--scale"),
    latency: args.includes("--latency"),
    scaleFactor: number("--scale-factor") ?? 1,
    levels: levels ?? (smoke ? [1, 8] : [1, 8, 32, 128]),
    rounds: number("--rounds") ?? (smoke ? 1 : 3),
    durationMs: (number("--seconds") ?? (smoke ? 1 : 10)) * 1000,
  };
}
