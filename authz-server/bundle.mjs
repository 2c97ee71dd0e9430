// Build step after `npm run build:server`: bundles dist/main.js and its production dependencies into one
// ES module (esbuild, tree-shaken) for the image, so the image ships no node_modules. Output folder
// (default authz-server/bundle/, generated, never committed): authz-server.mjs, envoy-protos.json (read
// beside the bundle), THIRD-PARTY-LICENSES.txt. `node authz-server/bundle.mjs [--outdir DIR]`.
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { build } from "esbuild";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..");
const { values } = parseArgs({ options: { outdir: { type: "string" } } });
const outdir = resolve(values.outdir ?? join(HERE, "bundle"));
const entry = join(HERE, "dist/main.js");
const descriptor = join(HERE, "dist/grpc/envoy-protos.json");
for (const f of [entry, descriptor]) if (!existsSync(f)) throw new Error(`${f} is missing: run npm run build:server first`);

const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

const result = await build({
  entryPoints: [entry],
  outfile: join(outdir, "authz-server.mjs"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: `node${/(\d+(?:\.\d+)*)/.exec(pkg.engines.node)[1]}`,
  // CommonJS dependencies call require() and read __dirname; an ES module has neither, so give them the bundle's.
  banner: {
    js: [
      'import { createRequire as __meshwardRequire } from "node:module";',
      'import { dirname as __meshwardDirname } from "node:path";',
      'import { fileURLToPath as __meshwardPath } from "node:url";',
      "const require = __meshwardRequire(import.meta.url);",
      "const __filename = __meshwardPath(import.meta.url);",
      "const __dirname = __meshwardDirname(__filename);",
    ].join("\n"),
  },
  // cli/args.ts reads package.json for the version when it runs from dist; the bundle carries it.
  define: { MESHWARD_VERSION: JSON.stringify(pkg.version) },
  // Not minified: stack traces from the image stay readable.
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
});
copyFileSync(descriptor, join(outdir, "envoy-protos.json"));

// The bundle carries third-party code, so it carries their licences: one section per package bundled.
const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = /^(.*node_modules\/((?:@[^/]+\/)?[^/]+))\//.exec(input); // the innermost package
  if (m) packages.set(join(ROOT, m[1]), m[2]);
}
const sections = [...packages.keys()]
  .sort((a, b) => packages.get(a).localeCompare(packages.get(b)))
  .map((dir) => {
    const meta = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(f));
    const text = file ? readFileSync(join(dir, file), "utf8").trim() : `(no licence file in the package; package.json says ${meta.license})`;
    return `${meta.name}@${meta.version} (${meta.license})\n\n${text}\n`;
  });
writeFileSync(join(outdir, "THIRD-PARTY-LICENSES.txt"), `Third-party packages bundled into authz-server.mjs (${sections.length}):\n\n${sections.join(`\n${"-".repeat(72)}\n\n`)}`);

const size = readFileSync(join(outdir, "authz-server.mjs")).length;
console.log(`wrote ${outdir.replace(ROOT + "/", "")}/authz-server.mjs (${(size / 1024 / 1024).toFixed(1)} MiB, ${sections.length} packages bundled)`);
