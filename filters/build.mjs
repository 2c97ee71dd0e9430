// Builds every filter target named in asconfig.json with the pinned AssemblyScript 0.17 compiler.
// Usage: node filters/build.mjs [target…]   (no target = all). Artifacts land in filters/build/.
import { readFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const asc = createRequire(import.meta.url)("assemblyscript/cli/asc");
const config = JSON.parse(readFileSync(join(root, "asconfig.json"), "utf8"));
const wanted = process.argv.slice(2);
const names = wanted.length ? wanted : Object.keys(config.targets);

mkdirSync(join(root, "filters/build"), { recursive: true });
await asc.ready;
for (const name of names) {
  const target = config.targets[name];
  if (!target) {
    console.error(`filters/build.mjs: unknown target '${name}' (asconfig.json has: ${Object.keys(config.targets).join(", ")})`);
    process.exit(2);
  }
  const started = Date.now();
  const code = await new Promise((resolve) => {
    asc.main([...target.entries, "--config", "asconfig.json", "--target", name, "--baseDir", root],
      { stdout: process.stdout, stderr: process.stderr }, (err) => { if (err) console.error(String(err)); resolve(err ? 1 : 0); return 0; });
  });
  if (code !== 0) {
    console.error(`filters/build.mjs: ${name} failed to compile`);
    process.exit(1);
  }
  console.log(`built filters/build/${name}.wasm in ${Date.now() - started} ms`);
}
