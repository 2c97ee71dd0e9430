// The digest-pinning step for the Wasm images: it writes a registry digest into spec.sha256 of exactly
// the WasmPlugin documents that pull that image, and touches nothing else.
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { pinDigests, wasmImages } from "../../tools/image/pin-wasm-digests.js";

const read = (p: string): string => readFileSync(fileURLToPath(new URL(`../../${p}`, import.meta.url)), "utf8");
const D1 = "a".repeat(64);
const D2 = "b".repeat(64);

describe("pin-wasm-digests", () => {
  it("finds the images the shipped WasmPlugins pull", () => {
    assert.deepEqual(wasmImages(read("envoy/istio/wasmplugin-header-router.yaml")), ["ghcr.io/meshward/header-router:0.1.0"]);
    assert.deepEqual(wasmImages(read("envoy/istio/wasmplugin-rate-limit.yaml")), ["ghcr.io/meshward/rate-limit:0.1.0"]);
  });

  it("pins every document of the shipped files and leaves all other lines as they were", () => {
    for (const [file, image] of [["envoy/istio/wasmplugin-header-router.yaml", "ghcr.io/meshward/header-router:0.1.0"], ["envoy/istio/wasmplugin-rate-limit.yaml", "ghcr.io/meshward/rate-limit:0.1.0"]] as const) {
      const before = read(file);
      const after = pinDigests(before, new Map([[image, D1]]));
      const changed = after.split("\n").filter((l, i) => l !== before.split("\n")[i]);
      assert.equal(changed.length, (before.match(/sha256:/g) ?? []).length, file);
      assert.ok(changed.every((l) => l.trim() === `sha256: "${D1}"`), changed.join("\n"));
    }
  });

  it("pins per image, across documents, and refuses a value that is not a digest", () => {
    const text = ["url: oci://r/a:1", 'sha256: "0"', "---", "url: oci://r/b:1", "sha256: x", "---", "sha256: keep"].join("\n");
    assert.equal(pinDigests(text, new Map([["r/a:1", D1], ["r/b:1", D2]])), ["url: oci://r/a:1", `sha256: "${D1}"`, "---", "url: oci://r/b:1", `sha256: "${D2}"`, "---", "sha256: keep"].join("\n"));
    assert.throws(() => pinDigests(text, new Map([["r/a:1", "sha256:abc"]])), /not a sha256 digest/);
  });
});
