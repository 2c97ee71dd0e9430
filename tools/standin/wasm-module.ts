// Reads a module's type/import/function/export sections so the host can link-check as Envoy's V8 runtime does
// (Node does not check the signatures of JS imports). Signatures are strings like "iii:i" ("" = no params/results).

export interface ModuleImport { module: string; name: string; kind: "func" | "table" | "memory" | "global" | "tag"; sig?: string }
export interface ModuleExport { name: string; kind: "func" | "table" | "memory" | "global" | "tag"; sig?: string }
export interface ModuleInfo { imports: ModuleImport[]; exports: ModuleExport[] }

const VALTYPE: Record<number, string> = { 0x7f: "i", 0x7e: "I", 0x7d: "f", 0x7c: "F", 0x7b: "v", 0x70: "r", 0x6f: "x" };
const KINDS = ["func", "table", "memory", "global", "tag"] as const;

export class WasmParseError extends Error {
  readonly code = "ERR_WASM_PARSE";
}

export function inspectModule(bytes: Uint8Array): ModuleInfo {
  let p = 0;
  const u8 = bytes;
  const fail = (what: string): never => {
    throw new WasmParseError(`malformed wasm module: ${what} at byte ${p}`);
  };
  const byte = (): number => (p < u8.length ? u8[p++]! : fail("unexpected end"));
  const uleb = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 35) fail("varint too long");
    }
  };
  const name = (): string => {
    const len = uleb();
    if (p + len > u8.length) fail("name overruns module");
    const s = Buffer.from(u8.buffer, u8.byteOffset + p, len).toString("utf8");
    p += len;
    return s;
  };
  const skipLimits = (): void => {
    const flags = byte();
    uleb();
    if (flags & 1) uleb();
  };
  if (u8.length < 8 || u8[0] !== 0 || u8[1] !== 0x61 || u8[2] !== 0x73 || u8[3] !== 0x6d) fail("bad magic");
  p = 8;
  const types: string[] = [];
  const imports: ModuleImport[] = [];
  const funcTypes: number[] = [];
  const exports: ModuleExport[] = [];
  while (p < u8.length) {
    const id = byte();
    const size = uleb();
    const end = p + size;
    if (end > u8.length) fail("section overruns module");
    if (id === 1) {
      const n = uleb();
      for (let i = 0; i < n; i++) {
        if (byte() !== 0x60) fail("expected func type");
        let params = "";
        for (let k = uleb(); k > 0; k--) params += VALTYPE[byte()] ?? "?";
        let results = "";
        for (let k = uleb(); k > 0; k--) results += VALTYPE[byte()] ?? "?";
        types.push(`${params}:${results}`);
      }
    } else if (id === 2) {
      const n = uleb();
      for (let i = 0; i < n; i++) {
        const module = name();
        const field = name();
        const kind = KINDS[byte()] ?? fail("unknown import kind");
        if (kind === "func") {
          const t = uleb();
          funcTypes.push(t);
          imports.push({ module, name: field, kind, sig: types[t] ?? fail("bad type index") });
        } else {
          if (kind === "table") {
            byte();
            skipLimits();
          } else if (kind === "memory") skipLimits();
          else if (kind === "global") {
            byte();
            byte();
          } else {
            byte();
            uleb();
          }
          imports.push({ module, name: field, kind });
        }
      }
    } else if (id === 3) {
      for (let n = uleb(); n > 0; n--) funcTypes.push(uleb());
    } else if (id === 7) {
      const n = uleb();
      for (let i = 0; i < n; i++) {
        const field = name();
        const kind = KINDS[byte()] ?? fail("unknown export kind");
        const index = uleb();
        const exp: ModuleExport = { name: field, kind };
        if (kind === "func") {
          const t = funcTypes[index];
          if (t !== undefined && types[t] !== undefined) exp.sig = types[t];
        }
        exports.push(exp);
      }
    }
    p = end;
  }
  return { imports, exports };
}
