// Strict offline validation of Envoy v3 JSON/YAML configuration against Envoy's own protos (shipped in
// @grpc/grpc-js-xds/deps), following protobuf's JSON mapping the way Envoy parses bootstrap files.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import type * as Protobuf from "protobufjs";
import { envoyProtoDirs } from "../../authz-server/src/grpc/protos.js";
import type { ProblemCode } from "./problem-codes.js";
import { childPath, type Problem } from "./problem.js";

type Root = Protobuf.Root;
type Type = Protobuf.Type;
type Field = Protobuf.Field;
type Enum = Protobuf.Enum;

/** Type name of the Envoy bootstrap, the root of every file in envoy/local/. */
export const BOOTSTRAP_TYPE = "envoy.config.bootstrap.v3.Bootstrap";

const requireHere = createRequire(import.meta.url);

/** protobufjs as @grpc/proto-loader resolves it (it is that package's dependency, not ours). */
function loadProtobufjs(): typeof Protobuf {
  const loaderEntry = requireHere.resolve("@grpc/proto-loader");
  return createRequire(loaderEntry)("protobufjs") as typeof Protobuf;
}

function protoIncludeDirs(): string[] {
  const protobufjsDir = dirname(createRequire(requireHere.resolve("@grpc/proto-loader")).resolve("protobufjs/package.json"));
  return [...envoyProtoDirs(), protobufjsDir];
}

function findInclude(dirs: readonly string[], file: string): string | undefined {
  for (const d of dirs) {
    const p = join(d, file);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** True when every import of `file`, transitively, exists (a few Envoy protos import OpenCensus/OTel protos not shipped). */
function importsResolvable(dirs: readonly string[], file: string, memo: Map<string, boolean>): boolean {
  const known = memo.get(file);
  if (known !== undefined) return known;
  memo.set(file, true);
  const full = findInclude(dirs, file);
  let ok = full !== undefined;
  if (full !== undefined) {
    const text = readFileSync(full, "utf8");
    for (const m of text.matchAll(/^import\s+(?:public\s+)?"([^"]+)";/gm)) {
      const dep = m[1] as string;
      if (dep.startsWith("google/protobuf/")) continue;
      if (!importsResolvable(dirs, dep, memo)) { ok = false; break; }
    }
  }
  memo.set(file, ok);
  return ok;
}

function listV3Protos(envoyApi: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".proto") && /\/v3(alpha)?\//.test(p)) out.push(relative(envoyApi, p));
    }
  };
  for (const sub of ["config", "extensions", "type", "data"]) {
    const d = join(envoyApi, "envoy", sub);
    if (existsSync(d)) walk(d);
  }
  return out.sort();
}

/** Envoy's protos, loaded lazily: the bootstrap closure first, then the file of each `@type` met. */
export class EnvoyProtoRegistry {
  readonly root: Root;
  private readonly dirs: readonly string[];
  private readonly importsOk = new Map<string, boolean>();
  /** Fully-qualified top-level message name → proto file (relative to envoy-api). */
  private readonly fileOfType = new Map<string, string>();
  private readonly loadedFiles = new Set<string>();
  /** Files not loadable because an import is not shipped (OpenCensus, OpenTelemetry protos). */
  readonly skipped: string[] = [];
  loadMs = 0;

  constructor() {
    const t0 = performance.now();
    const protobuf = loadProtobufjs();
    this.dirs = protoIncludeDirs();
    this.root = new protobuf.Root();
    this.root.resolvePath = (_origin: string, target: string): string => findInclude(this.dirs, target) ?? target;
    const envoyApi = this.dirs[0] as string;
    for (const file of listV3Protos(envoyApi)) {
      const text = readFileSync(join(envoyApi, file), "utf8");
      const pkg = /^package\s+([\w.]+);/m.exec(text)?.[1];
      if (pkg === undefined) continue;
      for (const m of text.matchAll(/^(?:message|enum)\s+(\w+)\s*\{/gm)) this.fileOfType.set(`${pkg}.${m[1]}`, file);
    }
    this.load("envoy/config/bootstrap/v3/bootstrap.proto");
    this.loadMs = performance.now() - t0;
  }

  /** Number of proto files loaded so far, imports included. */
  get loaded(): number {
    return this.root.files.length;
  }

  /** Looks a message type up by full name, loading its proto file on first use. */
  findType(name: string): Type | undefined {
    const known = this.lookupLoaded(name);
    if (known) return known;
    for (let n = name; n.includes("."); n = n.slice(0, n.lastIndexOf("."))) {
      const file = this.fileOfType.get(n);
      if (file === undefined) continue;
      const t0 = performance.now();
      const ok = this.load(file);
      this.loadMs += performance.now() - t0;
      return ok ? this.lookupLoaded(name) : undefined;
    }
    return undefined;
  }

  /** The proto file defining `name` when it exists but cannot be loaded (an import is not shipped). */
  unloadableFile(name: string): string | undefined {
    for (let n = name; n.includes("."); n = n.slice(0, n.lastIndexOf("."))) {
      const file = this.fileOfType.get(n);
      if (file !== undefined) return this.skipped.includes(file) ? file : undefined;
    }
    return undefined;
  }

  private lookupLoaded(name: string): Type | undefined {
    const found = this.root.lookup(name);
    return found !== null && "fieldsArray" in found ? (found as Type) : undefined;
  }

  private load(file: string): boolean {
    if (this.loadedFiles.has(file)) return true;
    if (!importsResolvable(this.dirs, file, this.importsOk)) {
      this.skipped.push(file);
      return false;
    }
    this.root.loadSync(file, { keepCase: true });
    this.loadedFiles.add(file);
    patchKnownGaps(this.root);
    this.root.resolveAll();
    return true;
  }
}

/**
 * Fields Envoy 1.40 accepts that the protos shipped in @grpc/grpc-js-xds predate (checked with
 * `envoy --mode validate`): wasm PluginConfig.failure_policy, which replaces the deprecated fail_open.
 */
function patchKnownGaps(root: Root): void {
  const plugin = root.lookup("envoy.extensions.wasm.v3.PluginConfig");
  if (plugin === null || !("fieldsArray" in plugin) || (plugin as Type).fields["failure_policy"]) return;
  const protobuf = loadProtobufjs();
  const ns = plugin.parent as Protobuf.Namespace;
  if (ns.get("FailurePolicy") === null) ns.add(new protobuf.Enum("FailurePolicy", { UNSPECIFIED: 0, FAIL_RELOAD: 1, FAIL_CLOSED: 2, FAIL_OPEN: 3 }));
  const field = new protobuf.Field("failure_policy", 7, "FailurePolicy");
  (plugin as Type).add(field);
  field.resolve();
}

let cached: EnvoyProtoRegistry | undefined;

/** The process-wide registry (loading the bootstrap closure takes a few hundred ms; later files load on demand). */
export function loadEnvoyProtos(): EnvoyProtoRegistry {
  cached ??= new EnvoyProtoRegistry();
  return cached;
}

const DURATION_RE = /^-?\d{1,12}(\.\d{1,9})?s$/;
const TIMESTAMP_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const INT_STRING_RE = /^-?\d+$/;
const BASE64_RE = /^[A-Za-z0-9+/_-]*={0,2}$/;

const WRAPPERS: Readonly<Record<string, string>> = {
  "google.protobuf.DoubleValue": "double",
  "google.protobuf.FloatValue": "float",
  "google.protobuf.Int64Value": "int64",
  "google.protobuf.UInt64Value": "uint64",
  "google.protobuf.Int32Value": "int32",
  "google.protobuf.UInt32Value": "uint32",
  "google.protobuf.BoolValue": "bool",
  "google.protobuf.StringValue": "string",
  "google.protobuf.BytesValue": "bytes",
};

/** Well-known types whose JSON form is not an object of their fields; inside an Any they sit under "value". */
const SPECIAL_JSON = new Set([
  ...Object.keys(WRAPPERS),
  "google.protobuf.Duration",
  "google.protobuf.Timestamp",
  "google.protobuf.Struct",
  "google.protobuf.Value",
  "google.protobuf.ListValue",
  "google.protobuf.FieldMask",
  "google.protobuf.Any",
]);

function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function lowerCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function fullName(t: Type | Enum): string {
  return t.fullName.replace(/^\./, "");
}

/** Validates one JSON value against one Envoy message type; problems carry `file` and dotted paths. */
export class EnvoyJsonValidator {
  private readonly fieldIndex = new WeakMap<Type, Map<string, Field>>();

  constructor(private readonly registry: EnvoyProtoRegistry = loadEnvoyProtos()) {}

  validate(typeName: string, value: unknown, file: string, path = ""): Problem[] {
    const out: Problem[] = [];
    const t = this.registry.findType(typeName);
    if (!t) throw new Error(`unknown Envoy message type ${typeName}`);
    this.message(t, value, path, new Ctx(file, out));
    return out;
  }

  /** Resolves a type URL such as `type.googleapis.com/envoy.config.cluster.v3.Cluster`. */
  resolveTypeUrl(url: string): Type | undefined {
    const name = url.slice(url.lastIndexOf("/") + 1);
    if (name === "" || !/^[A-Za-z_][\w.]*$/.test(name)) return undefined;
    return this.registry.findType(name);
  }

  private fields(t: Type): Map<string, Field> {
    let idx = this.fieldIndex.get(t);
    if (!idx) {
      idx = new Map();
      for (const f of t.fieldsArray) {
        idx.set(f.name, f);
        idx.set(lowerCamel(f.name), f);
        const jsonName = (f.options as Record<string, unknown> | undefined)?.["json_name"];
        if (typeof jsonName === "string") idx.set(jsonName, f);
      }
      this.fieldIndex.set(t, idx);
    }
    return idx;
  }

  private message(t: Type, v: unknown, path: string, ctx: Ctx): void {
    const name = fullName(t);
    if (SPECIAL_JSON.has(name)) return this.wellKnown(name, t, v, path, ctx);
    if (!isPlainObject(v)) return ctx.problem(path, "ERR_ENVOY_WRONG_TYPE", `expected object (${name}), got ${kindOf(v)}`);
    this.fieldsOf(t, v, path, ctx, new Set());
  }

  private fieldsOf(t: Type, v: Record<string, unknown>, path: string, ctx: Ctx, ignore: ReadonlySet<string>): void {
    const name = fullName(t);
    const index = this.fields(t);
    const seen = new Map<string, string>();
    for (const [key, val] of Object.entries(v)) {
      if (ignore.has(key)) continue;
      const p = childPath(path, key);
      const f = index.get(key);
      if (!f) { ctx.problem(p, "ERR_ENVOY_UNKNOWN_FIELD", `unknown field "${key}" in ${name}`); continue; }
      const prev = seen.get(f.name);
      if (prev !== undefined) { ctx.problem(p, "ERR_ENVOY_DUPLICATE_FIELD", `field "${key}" duplicates "${prev}"`); continue; }
      seen.set(f.name, key);
      const fieldOptions = f.options as Record<string, unknown> | undefined;
      if (fieldOptions?.["deprecated"] === true) {
        const fatal = fieldOptions["(envoy.annotations.disallowed_by_default)"] === true;
        ctx.problem(p, "ERR_ENVOY_DEPRECATED_FIELD", `field "${key}" of ${name} is deprecated${fatal ? " and disallowed by default" : ""}`, fatal ? undefined : "warning");
      }
      if (val === null && !isValueType(f)) continue;
      this.field(f, val, p, ctx);
    }
    for (const f of t.fieldsArray) {
      const opts = f.options as Record<string, unknown> | undefined;
      if (opts?.["(validate.rules).message.required"] === true && !f.partOf && !seen.has(f.name)) {
        ctx.problem(childPath(path, f.name), "ERR_ENVOY_MISSING_FIELD", `missing required field "${f.name}" in ${name}`);
      }
    }
    for (const o of t.oneofsArray) {
      const set = o.oneof.filter((m) => seen.has(m) && v[seen.get(m) as string] !== null);
      if (set.length > 1) {
        ctx.problem(path, "ERR_ENVOY_ONEOF_CONFLICT", `oneof "${o.name}" of ${name} has more than one member set: ${set.map((m) => seen.get(m)).join(", ")}`);
      } else if (set.length === 0 && (o.options as Record<string, unknown> | undefined)?.["(validate.required)"] === true) {
        ctx.problem(path, "ERR_ENVOY_MISSING_FIELD", `oneof "${o.name}" of ${name} requires one of: ${o.oneof.join(", ")}`);
      }
    }
  }

  private field(f: Field, v: unknown, path: string, ctx: Ctx): void {
    if (f.map) {
      if (!isPlainObject(v)) return ctx.problem(path, "ERR_ENVOY_WRONG_TYPE", `expected object (map), got ${kindOf(v)}`);
      for (const [k, item] of Object.entries(v)) this.single(f, item, childPath(path, k), ctx);
      return;
    }
    if (f.repeated) {
      if (!Array.isArray(v)) return ctx.problem(path, "ERR_ENVOY_WRONG_TYPE", `expected array, got ${kindOf(v)}`);
      v.forEach((item, i) => this.single(f, item, childPath(path, i), ctx));
      return;
    }
    this.single(f, v, path, ctx);
  }

  private single(f: Field, v: unknown, path: string, ctx: Ctx): void {
    const rt = f.resolvedType;
    if (rt && "fieldsArray" in rt) return this.message(rt as Type, v, path, ctx);
    if (rt) return this.enumValue(rt as Enum, v, path, ctx, (f.options as Record<string, unknown> | undefined)?.["(validate.rules).enum.defined_only"] === true);
    this.scalar(f.type, v, path, ctx);
    const minLen = (f.options as Record<string, unknown> | undefined)?.["(validate.rules).string.min_len"];
    if (typeof minLen === "number" && typeof v === "string" && v.length < minLen) {
      ctx.problem(path, "ERR_ENVOY_INVALID_VALUE", `must be at least ${minLen} character${minLen === 1 ? "" : "s"} long`);
    }
  }

  private enumValue(e: Enum, v: unknown, path: string, ctx: Ctx, definedOnly: boolean): void {
    if (fullName(e) === "google.protobuf.NullValue" && v === null) return;
    if (typeof v === "string") {
      if (!(v in e.values)) ctx.problem(path, "ERR_ENVOY_BAD_ENUM", `invalid enum value "${v}" for ${fullName(e)} (expected one of ${Object.keys(e.values).join(", ")})`);
      return;
    }
    if (typeof v === "number" && Number.isInteger(v)) {
      if (definedOnly && !Object.values(e.values).includes(v)) ctx.problem(path, "ERR_ENVOY_BAD_ENUM", `invalid enum value ${v} for ${fullName(e)}`);
      return;
    }
    ctx.problem(path, "ERR_ENVOY_WRONG_TYPE", `expected enum ${fullName(e)} (a name), got ${kindOf(v)}`);
  }

  private scalar(type: string, v: unknown, path: string, ctx: Ctx): void {
    const wrong = (expected: string): void => ctx.problem(path, "ERR_ENVOY_WRONG_TYPE", `expected ${expected}, got ${kindOf(v)}${typeof v === "string" ? ` "${v}"` : ""}`);
    switch (type) {
      case "string":
        if (typeof v !== "string") wrong("string");
        return;
      case "bool":
        if (typeof v !== "boolean") wrong("boolean");
        return;
      case "bytes":
        if (typeof v !== "string" || !BASE64_RE.test(v)) wrong("base64 string");
        return;
      case "double":
      case "float":
        if (typeof v === "number") return;
        if (typeof v === "string" && (["NaN", "Infinity", "-Infinity"].includes(v) || (v.trim() !== "" && Number.isFinite(Number(v))))) return;
        return wrong("number");
      default: {
        const unsigned = type.startsWith("uint") || type.startsWith("fixed");
        const bits64 = type.endsWith("64");
        let n: number | bigint | undefined;
        if (typeof v === "number" && Number.isInteger(v)) n = v;
        else if (typeof v === "string" && INT_STRING_RE.test(v)) n = BigInt(v);
        if (n === undefined) return wrong(`integer (${type})`);
        const big = BigInt(n);
        const min = unsigned ? 0n : bits64 ? -(2n ** 63n) : -(2n ** 31n);
        const max = unsigned ? (bits64 ? 2n ** 64n - 1n : 2n ** 32n - 1n) : bits64 ? 2n ** 63n - 1n : 2n ** 31n - 1n;
        if (big < min || big > max) ctx.problem(path, "ERR_ENVOY_WRONG_TYPE", `integer ${String(v)} out of range for ${type}`);
      }
    }
  }

  private wellKnown(name: string, t: Type, v: unknown, path: string, ctx: Ctx): void {
    const wrapped = WRAPPERS[name];
    if (wrapped !== undefined) return this.scalar(wrapped, v, path, ctx);
    switch (name) {
      case "google.protobuf.Duration":
        if (typeof v !== "string" || !DURATION_RE.test(v)) ctx.problem(path, "ERR_ENVOY_BAD_DURATION", `invalid duration ${JSON.stringify(v)} (expected e.g. "0.25s")`);
        return;
      case "google.protobuf.Timestamp":
        if (typeof v !== "string" || !TIMESTAMP_RE.test(v)) ctx.problem(path, "ERR_ENVOY_WRONG_TYPE", `invalid timestamp ${JSON.stringify(v)}`);
        return;
      case "google.protobuf.Struct":
        if (!isPlainObject(v)) ctx.problem(path, "ERR_ENVOY_WRONG_TYPE", `expected object (google.protobuf.Struct), got ${kindOf(v)}`);
        return;
      case "google.protobuf.ListValue":
        if (!Array.isArray(v)) ctx.problem(path, "ERR_ENVOY_WRONG_TYPE", `expected array (google.protobuf.ListValue), got ${kindOf(v)}`);
        return;
      case "google.protobuf.Value":
        return;
      case "google.protobuf.FieldMask":
        if (typeof v !== "string") ctx.problem(path, "ERR_ENVOY_WRONG_TYPE", `expected string (google.protobuf.FieldMask), got ${kindOf(v)}`);
        return;
      case "google.protobuf.Any":
        return this.any(v, path, ctx);
      default:
        return this.fieldsOf(t, v as Record<string, unknown>, path, ctx, new Set());
    }
  }

  /** An Any carries "@type"; Envoy resolves it against the linked protos, so an unknown type URL is fatal. */
  private any(v: unknown, path: string, ctx: Ctx): void {
    if (!isPlainObject(v)) return ctx.problem(path, "ERR_ENVOY_WRONG_TYPE", `expected object (google.protobuf.Any), got ${kindOf(v)}`);
    const url = v["@type"];
    if (typeof url !== "string") return ctx.problem(childPath(path, "@type"), "ERR_ENVOY_MISSING_TYPE", `missing "@type" in google.protobuf.Any`);
    const t = this.resolveTypeUrl(url);
    if (!t) {
      const unloadable = this.registry.unloadableFile(url.slice(url.lastIndexOf("/") + 1));
      // Envoy knows this type, but its proto imports files @grpc/grpc-js-xds does not ship: not validated.
      if (unloadable !== undefined) return ctx.problem(path, "ERR_ENVOY_TYPE_NOT_VALIDATED", `@type "${url}" not validated: ${unloadable} imports protos not shipped with @grpc/grpc-js-xds`, "warning");
      return ctx.problem(childPath(path, "@type"), "ERR_ENVOY_UNRESOLVABLE_TYPE", `unresolvable @type "${url}"`);
    }
    const name = fullName(t);
    if (SPECIAL_JSON.has(name)) {
      for (const k of Object.keys(v)) {
        if (k !== "@type" && k !== "value") ctx.problem(childPath(path, k), "ERR_ENVOY_UNKNOWN_FIELD", `unknown field "${k}" in google.protobuf.Any holding ${name}`);
      }
      return this.wellKnown(name, t, v["value"], childPath(path, "value"), ctx);
    }
    this.fieldsOf(t, v, path, ctx, new Set(["@type"]));
  }
}

function isValueType(f: Field): boolean {
  const rt = f.resolvedType;
  return rt !== null && (fullName(rt as Type) === "google.protobuf.Value" || fullName(rt as Type) === "google.protobuf.NullValue");
}

class Ctx {
  constructor(
    readonly file: string,
    readonly out: Problem[],
  ) {}

  problem(path: string, code: ProblemCode, message: string, severity?: "warning"): void {
    this.out.push(severity ? { file: this.file, path, code, message, severity } : { file: this.file, path, code, message });
  }
}
