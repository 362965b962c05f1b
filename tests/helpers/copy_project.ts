import { PROJECT_DIR } from "./subprocess.ts";

/** What a fresh clone holds that the service needs (no node_modules, no .pglite). */
const TRACKED = ["deno.json", "deno.lock", "main.ts", ".gitignore", "src", "migrations"];

/** Copies the project's files into `dir`, as a fresh clone would have them. */
export async function copy(dir: string): Promise<void> {
  for (const name of TRACKED) await copyPath(`${PROJECT_DIR}${name}`, `${dir}/${name}`);
}

async function copyPath(from: string, to: string): Promise<void> {
  const info = await Deno.stat(from);
  if (!info.isDirectory) return await Deno.copyFile(from, to);
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) await copyPath(`${from}/${entry.name}`, `${to}/${entry.name}`);
}
