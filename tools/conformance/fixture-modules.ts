// Tiny purpose-made proxy-wasm modules for the failure cases of the corpus (a trap on every request,
// a trap in on_configure, an import Envoy does not provide), assembled from WebAssembly text with the
// binaryen that ships with the pinned AssemblyScript compiler, cached in the OS temp directory.
import { createHash } from "node:crypto";
import { mkdirSync, renameSync, writeFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

interface Binaryen {
  ready: Promise<unknown>;
  parseText(text: string): { validate(): number; emitBinary(): Uint8Array; dispose(): void };
}

function body(parts: { configure?: string; requestHeaders?: string; imports?: string; data?: string }): string {
  return `(module
  ${parts.imports ?? ""}
  (memory (export "memory") 2)
  ${parts.data ?? ""}
  (func (export "proxy_abi_version_0_2_0"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 4096))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) ${parts.configure ?? "(i32.const 1)"})
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) ${parts.requestHeaders ?? "(i32.const 0)"})
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32))
)`;
}

/** Fixture modules by name (`fixture:<name>` in a suite). */
export const FIXTURE_MODULES: Readonly<Record<string, string>> = {
  /** Traps in on_request_headers: the VM fails on the first request. */
  "trap-request": body({ requestHeaders: "(unreachable)" }),
  /** Traps in on_configure: the plugin cannot be configured. */
  "trap-configure": body({ configure: "(unreachable)" }),
  /** on_configure returns false. */
  "configure-false": body({ configure: "(i32.const 0)" }),
  /** Passes everything through (the control for the others). */
  passthrough: body({}),
  /**
   * on_configure succeeds only in the first VM of the process (it marks shared data) and returns false
   * in every later one: Envoy's load-time configuration passes, each thread-local one fails.
   */
  "configure-first-vm-only": body({
    imports: '(import "env" "proxy_get_shared_data" (func $get (param i32 i32 i32 i32 i32) (result i32))) ' +
      '(import "env" "proxy_set_shared_data" (func $set (param i32 i32 i32 i32 i32) (result i32)))',
    data: '(data (i32.const 16) "fx-first-vm")',
    // NotFound (1): the first VM marks the key and succeeds; any other answer means a VM came before.
    configure: "(if (result i32) (i32.eq (call $get (i32.const 16) (i32.const 11) (i32.const 64) (i32.const 68) (i32.const 72)) (i32.const 1)) " +
      "(then (drop (call $set (i32.const 16) (i32.const 11) (i32.const 16) (i32.const 1) (i32.const 0))) (i32.const 1)) (else (i32.const 0)))",
  }),
  /** Imports proxy_clear_route_cache, which Envoy does not provide to ABI 0.2.x modules. */
  "link-missing": body({ imports: '(import "env" "proxy_clear_route_cache" (func $crc (result i32)))' }),
};

/** Writes the fixture module `name` (once per content) and returns its absolute path. */
export async function fixtureModulePath(name: string): Promise<string> {
  const text = FIXTURE_MODULES[name];
  if (text === undefined) throw new Error(`no fixture module ${name}`);
  const dir = join(tmpdir(), "meshward-conformance-wasm");
  const file = join(dir, `${name}-${createHash("sha256").update(text).digest("hex").slice(0, 16)}.wasm`);
  if (existsSync(file)) return file;
  const req = createRequire(createRequire(import.meta.url).resolve("assemblyscript"));
  const binaryen = req("binaryen") as Binaryen;
  await binaryen.ready;
  const mod = binaryen.parseText(text);
  try {
    if (!mod.validate()) throw new Error(`fixture module ${name} does not validate`);
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, mod.emitBinary());
    renameSync(tmp, file);
  } finally {
    mod.dispose();
  }
  return file;
}
