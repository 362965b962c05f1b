/**
 * The house rules that keep the layout readable: the domain never speaks
 * HTTP, and the environment is read in one place.
 */
import assert from "node:assert/strict";

const SRC = new URL("../src/", import.meta.url);

async function sourceFiles(dir: URL, prefix = ""): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = prefix + entry.name;
    if (entry.isDirectory) files.push(...await sourceFiles(new URL(`${entry.name}/`, dir), `${path}/`));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

function imports(text: string): string[] {
  return [...text.matchAll(/from "([^"]+)"/g)].map((match) => match[1]);
}

Deno.test("no folder outside src/http imports it, but the entry point", async () => {
  const offenders: string[] = [];
  for (const file of await sourceFiles(SRC)) {
    if (file.startsWith("http/") || file === "start_service.ts") continue;
    const text = await Deno.readTextFile(new URL(file, SRC));
    for (const target of imports(text)) {
      if (/(^|\/)http\//.test(target)) offenders.push(`src/${file} -> ${target}`);
    }
  }
  assert.deepEqual(offenders, []);
});

Deno.test("the environment is read only by src/config/read_env.ts", async () => {
  const readers: string[] = [];
  for (const file of await sourceFiles(SRC)) {
    const text = await Deno.readTextFile(new URL(file, SRC));
    if (/Deno\.env\.(get|toObject)\(/.test(text)) readers.push(`src/${file}`);
  }
  assert.deepEqual(readers, ["src/config/read_env.ts"]);
});
