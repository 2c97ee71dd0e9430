// The Dockerfiles (Docker does not run here) are checked textually: what they copy exists or is a build
// output the build declares, the runtime stages are non-root, and the images match the manifests.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { BUNDLE_FILES } from "../../tools/image/bundle.js";

const repo = (p: string): string => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const read = (p: string): string => readFileSync(repo(p), "utf8");

interface Instruction {
  readonly op: string;
  readonly args: string;
}

function instructions(dockerfile: string): Instruction[] {
  return read(dockerfile)
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: (op as string).toUpperCase(), args: rest.join(" ") };
    });
}

/** Build outputs the repository declares: asconfig binaryFile per target. */
function wasmOutputs(): Map<string, string> {
  const asconfig = JSON.parse(read("asconfig.json")) as { targets: Record<string, { binaryFile: string }> };
  return new Map(Object.entries(asconfig.targets).map(([name, t]) => [name, t.binaryFile]));
}

/** Sources of a COPY without --from (the last word is the destination). */
function copySources(i: Instruction): string[] {
  const words = i.args.split(/\s+/).filter((w) => !w.startsWith("--"));
  return words.slice(0, -1);
}

function lastStage(all: Instruction[]): Instruction[] {
  const from = all.map((i) => i.op).lastIndexOf("FROM");
  return all.slice(from);
}

function assertNonRootUser(stage: Instruction[]): void {
  const user = stage.filter((i) => i.op === "USER").at(-1);
  assert.ok(user, "the final stage sets USER");
  const [uid] = user.args.split(":");
  assert.match(uid as string, /^\d+$/, "numeric uid, so runAsNonRoot can verify it");
  assert.notEqual(Number(uid), 0);
}

describe("container images (textual checks)", function () {
  it("authz-server: multi-stage, the runtime stage holds the bundle alone (no npm, no node_modules, no sources), non-root", function () {
    const all = instructions("envoy/k8s/Dockerfile.authz-server");
    assert.ok(all.filter((i) => i.op === "FROM").length >= 2, "multi-stage");
    const build = all.slice(0, all.length - lastStage(all).length);
    assert.ok(build.some((i) => i.op === "RUN" && /^npm run build:bundle$/.test(i.args)), "the build stage runs npm run build:bundle");
    const scripts = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts;
    assert.match(scripts["build:bundle"] ?? "", /npm run build:server && node authz-server\/bundle\.mjs$/);
    const runtime = lastStage(all);
    assert.ok(!runtime.some((i) => i.op === "RUN"), "nothing runs in the runtime stage (no npm ci)");
    const copies = runtime.filter((i) => i.op === "COPY");
    assert.deepEqual(copies.map((c) => c.args), ["--from=build /src/authz-server/bundle/ ./"], "the runtime stage copies the bundle folder and nothing else");
    assertNonRootUser(runtime);
    for (const c of all.filter((i) => i.op === "COPY" && !i.args.includes("--from"))) {
      for (const src of copySources(c)) assert.ok(existsSync(repo(src)), `COPY source ${src} exists`);
    }
    assert.equal(runtime.find((i) => i.op === "WORKDIR")?.args, "/app");
    const entry = runtime.find((i) => i.op === "ENTRYPOINT");
    assert.ok(entry);
    assert.deepEqual(JSON.parse(entry.args), ["node", "/app/authz-server.mjs"]);
    assert.ok(BUNDLE_FILES.includes("authz-server.mjs"), "the entry point is the module authz-server/bundle.mjs writes");
    assert.match(read("authz-server/bundle.mjs"), /outfile: join\(outdir, "authz-server\.mjs"\)/);
  });

  it("authz-server: both stages on one NODE_IMAGE argument defaulting to the current Node LTS, which package.json engines admits", function () {
    const all = instructions("envoy/k8s/Dockerfile.authz-server");
    const arg = all.find((i) => i.op === "ARG" && i.args.startsWith("NODE_IMAGE="));
    assert.ok(arg, "ARG NODE_IMAGE=…");
    const m = /^NODE_IMAGE=node:(\d+)-bookworm-slim(@sha256:[0-9a-f]{64})?$/.exec(arg.args);
    assert.ok(m, `NODE_IMAGE is node:<major>-bookworm-slim, optionally @sha256:<digest>: ${arg.args}`);
    assert.equal(m[1], "26", "Node 26 is the Active LTS line (since October 2026)");
    assert.deepEqual(all.filter((i) => i.op === "FROM").map((i) => i.args.split(/\s+/)[0]), ["${NODE_IMAGE}", "${NODE_IMAGE}"]);
    const engines = (JSON.parse(read("package.json")) as { engines: { node: string } }).engines.node;
    const floor = /^>=(\d+)\./.exec(engines);
    assert.ok(floor && Number(m[1]) >= Number(floor[1]), `engines ${engines} admits Node ${m[1]}`);
    assert.match(read("envoy/k8s/Dockerfile.authz-server"), /docker buildx imagetools inspect node:26-bookworm-slim/, "the digest step is written down");
  });

  it("wasm images: FROM scratch with one plugin.wasm built by an asconfig target, for each filter a WasmPlugin pulls", function () {
    const all = instructions("envoy/k8s/Dockerfile.wasm");
    assert.deepEqual(all.filter((i) => i.op === "FROM").map((i) => i.args), ["scratch"]);
    const copy = all.filter((i) => i.op === "COPY");
    assert.equal(copy.length, 1);
    assert.deepEqual(copy[0]!.args.split(/\s+/), ["filters/build/${FILTER}.wasm", "./plugin.wasm"]);
    const outputs = wasmOutputs();
    const pulled = new Set<string>();
    for (const f of ["envoy/istio/wasmplugin-header-router.yaml", "envoy/istio/wasmplugin-rate-limit.yaml"]) {
      for (const d of parseAllDocuments(read(f))) {
        const spec = (d.toJS() as { spec: { url: string; pluginName: string } }).spec;
        const m = /^oci:\/\/ghcr\.io\/meshward\/([a-z-]+):[\w.-]+$/.exec(spec.url);
        assert.ok(m, `${f}: ${spec.url} is an oci:// image of ours`);
        assert.equal(m[1], spec.pluginName, "the image holds the filter the plugin names");
        pulled.add(m[1] as string);
      }
    }
    for (const filter of pulled) assert.equal(outputs.get(filter), `filters/build/${filter}.wasm`, `asconfig builds ${filter}`);
  });

  it("gateway image: copies the filters to where the in-cluster bootstrap loads them, non-root", function () {
    const all = instructions("envoy/k8s/Dockerfile.gateway");
    const copy = all.find((i) => i.op === "COPY");
    assert.ok(copy);
    const dest = copy.args.split(/\s+/).at(-1) as string;
    const outputs = new Set(wasmOutputs().values());
    for (const src of copySources(copy)) assert.ok(outputs.has(src), `${src} is a build output`);
    assertNonRootUser(lastStage(all));
    const cm = parseYaml(read("envoy/k8s/gateway/envoy-configmap.yaml")) as { data: Record<string, string> };
    const filenames = [...(cm.data["envoy.yaml"] as string).matchAll(/filename: (\S+?)\s*}/g)].map((m) => m[1] as string);
    assert.ok(filenames.length >= 2);
    for (const f of filenames) {
      assert.ok(f.startsWith(dest), `${f} is under ${dest}`);
      assert.ok(copySources(copy).some((s) => s.endsWith(f.slice(dest.length))), `${f} is copied into the image`);
    }
  });

  it("each Dockerfile's .dockerignore keeps what the Dockerfile copies", function () {
    for (const name of ["Dockerfile.authz-server", "Dockerfile.wasm", "Dockerfile.gateway"]) {
      const ignore = read(`envoy/k8s/${name}.dockerignore`).split("\n").filter((l) => l.startsWith("!")).map((l) => l.slice(1));
      const asRegex = (g: string): RegExp => new RegExp(`^${g.replace(/[.+^$()|[\]\\]/g, "\\$&").replace(/\*\*/g, "\u0000").replace(/\*/g, "[^/]*").replace(/\u0000/g, ".*")}$`);
      for (const c of instructions(`envoy/k8s/${name}`).filter((i) => i.op === "COPY" && !i.args.includes("--from"))) {
        for (const src of copySources(c)) {
          const probe = src.replace("${FILTER}", "rate-limit");
          const ok = ignore.some((g) => asRegex(g).test(probe) || g.startsWith(`${probe}/`));
          assert.ok(ok, `${name}: ${src} is not excluded by its .dockerignore`);
        }
      }
    }
  });

  it("the Deployment runs the image kustomize pins", function () {
    const k = parseYaml(read("envoy/k8s/kustomization.yaml")) as { images: { name: string; newTag: string }[] };
    const d = parseYaml(read("envoy/k8s/deployment.yaml")) as { spec: { template: { spec: { containers: { image: string }[] } } } };
    const image = d.spec.template.spec.containers[0]!.image;
    assert.ok(k.images.some((i) => image === `${i.name}:${i.newTag}`), image);
  });
});

describe("npm run envoy (tools/envoy/run-local.ts)", function () {
  it("exits 1 naming ENVOY_BIN when it is not an executable", function () {
    const r = spawnSync(process.execPath, ["--import", "tsx", "tools/envoy/run-local.ts"], { cwd: repo(""), encoding: "utf8", env: { PATH: process.env["PATH"], ENVOY_BIN: "/nonexistent/envoy" }, timeout: 30_000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /npm run envoy: ENVOY_BIN=\/nonexistent\/envoy is not an executable file/);
  });

  it("exits 1 with usage on an unknown argument", function () {
    const r = spawnSync(process.execPath, ["--import", "tsx", "tools/envoy/run-local.ts", "gateway"], { cwd: repo(""), encoding: "utf8", timeout: 30_000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /unknown argument "gateway" \(usage: npm run envoy \[-- edge\|sidecar\] \[--port N\]\)/);
  });
});
