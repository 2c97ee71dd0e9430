// `npm run pin-wasm-digests`: after the wasm images are pushed, reads each image's digest from the
// registry (`docker buildx imagetools inspect`) and writes it into spec.sha256 of the WasmPlugins that
// pull it (envoy/istio/wasmplugin-*.yaml) and of the TrafficExtensions (envoy/istio/traffic-extension/), and
// the same in their Gateway API flavour (envoy/istio/gateway-api/).
// Istio checks a pulled OCI image against this manifest digest.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ISTIO_DIR = fileURLToPath(new URL("../../envoy/istio/", import.meta.url));

/** The oci:// images the WasmPlugin documents in `text` pull, in order of appearance. */
export function wasmImages(text: string): string[] {
  return [...new Set([...text.matchAll(/^\s*url:\s*oci:\/\/(\S+)\s*$/gm)].map((m) => m[1]!))];
}

/**
 * Sets `sha256` of every WasmPlugin document whose `url` is `oci://<image>` with a digest in `digests`
 * (image → 64 hex digits); other text is left byte for byte.
 */
export function pinDigests(text: string, digests: ReadonlyMap<string, string>): string {
  let image: string | undefined;
  return text
    .split("\n")
    .map((line) => {
      if (/^---\s*$/.test(line)) image = undefined;
      const url = /^\s*url:\s*oci:\/\/(\S+)\s*$/.exec(line);
      if (url) image = url[1];
      const sha = /^(\s*sha256:\s*)\S*\s*$/.exec(line);
      const digest = image !== undefined ? digests.get(image) : undefined;
      if (sha && digest !== undefined) {
        if (!/^[0-9a-f]{64}$/.test(digest)) throw new Error(`${image}: '${digest}' is not a sha256 digest`);
        return `${sha[1]}"${digest}"`;
      }
      return line;
    })
    .join("\n");
}

/** The pushed image's manifest digest, from the registry. */
function registryDigest(image: string): string {
  const out = execFileSync("docker", ["buildx", "imagetools", "inspect", image, "--format", "{{json .Manifest.Digest}}"], { encoding: "utf8" });
  return JSON.parse(out).replace(/^sha256:/, "") as string;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const inDir = (dir: string, pattern: RegExp) => readdirSync(dir).filter((f) => pattern.test(f)).map((f) => join(dir, f));
  // The selector-based files and their Gateway API (targetRefs) flavour in gateway-api/.
  const files = ["", "gateway-api"].flatMap((d) => [...inDir(join(ISTIO_DIR, d), /^wasmplugin-.*\.yaml$/), ...inDir(join(ISTIO_DIR, d, "traffic-extension"), /^trafficextension-.*\.yaml$/)]);
  const images = [...new Set(files.flatMap((f) => wasmImages(readFileSync(f, "utf8"))))];
  const digests = new Map(images.map((i) => [i, registryDigest(i)] as const));
  for (const f of files) writeFileSync(f, pinDigests(readFileSync(f, "utf8"), digests));
  for (const [i, d] of digests) console.log(`${i} sha256:${d}`);
}
