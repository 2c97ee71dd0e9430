// Offline shape checks of the header-router and rate-limit plugin configurations (JSON), mirroring
// the filters' own onConfigure validation so check-config needs no wasm runtime.
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { closed } from "../../authz-server/src/closed-schema.js";
import { ajvErrorPath, ajvMessage, childPath, type Problem } from "./problem.js";

export type PluginName = "header-router" | "rate-limit";

const HEADER_NAME = { type: "string", pattern: "^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$" };
const HEADER_VALUE = { type: "string", pattern: "^(?! )[\\x20-\\x7e]*(?<! )$" };
const ROUTE = { type: "string", minLength: 1, pattern: "^(?! )[\\x20-\\x7e]*(?<! )$" };
const NAME = { type: "string", pattern: "^[A-Za-z0-9._-]{1,64}$" };
const ONE_OF_KEYS = (keys: readonly string[]): object => ({
  oneOf: keys.map((k) => ({ required: [k] })),
});

const STRING_CONDITION = {
  type: "object",
  additionalProperties: false,
  required: ["name"],
  properties: {
    name: { type: "string", minLength: 1 },
    exact: { type: "string" },
    prefix: { type: "string" },
    suffix: { type: "string" },
    contains: { type: "string" },
    present: { type: "boolean" },
    absent: { type: "boolean" },
  },
  ...ONE_OF_KEYS(["exact", "prefix", "suffix", "contains", "present", "absent"]),
};

const PATH_MATCH = {
  type: "object",
  additionalProperties: false,
  properties: {
    exact: { type: "string", pattern: "^/" },
    prefix: { type: "string", pattern: "^/" },
    glob: { type: "string", pattern: "^/((\\*\\*?|[^*/]*)(/(\\*\\*?|[^*/]*))*)?$" },
  },
  ...ONE_OF_KEYS(["exact", "prefix", "glob"]),
};

const REQUEST_MATCH = closed({
  path: PATH_MATCH,
  methods: { type: "array", items: { ...HEADER_NAME } },
  headers: { type: "array", items: { ...STRING_CONDITION, properties: { ...STRING_CONDITION.properties, name: HEADER_NAME } } },
  query: { type: "array", items: STRING_CONDITION },
  cookies: { type: "array", items: STRING_CONDITION },
});

/** JSON Schema of the header-router configuration (docs/plugin-configs.md). */
export const HEADER_ROUTER_SCHEMA = closed({
  routeHeader: { ...HEADER_NAME, minLength: 1 },
  rules: {
    type: "array",
    maxItems: 1000,
    items: {
      type: "object",
      additionalProperties: false,
      required: ["name"],
      properties: {
        name: { type: "string", pattern: "^[A-Za-z0-9_-]+$" },
        match: REQUEST_MATCH,
        route: ROUTE,
        split: closed({
          stickyOn: {
            type: "object",
            additionalProperties: false,
            properties: { header: { ...HEADER_NAME, minLength: 1 }, cookie: { type: "string", minLength: 1 } },
            ...ONE_OF_KEYS(["header", "cookie"]),
          },
          targets: {
            type: "array",
            minItems: 1,
            maxItems: 100,
            items: closed({ route: ROUTE, weight: { type: "integer", minimum: 1, maximum: 1000000 } }, ["route", "weight"]),
          },
        }, ["targets"]),
      },
      ...ONE_OF_KEYS(["route", "split"]),
    },
  },
  default: ROUTE,
  requestHeadersToAdd: {
    type: "array",
    items: closed({ name: HEADER_NAME, value: HEADER_VALUE }, ["name", "value"]),
  },
  requestHeadersToRemove: { type: "array", items: HEADER_NAME },
}, ["routeHeader"]);

/** JSON Schema of the rate-limit configuration (docs/plugin-configs.md). */
export const RATE_LIMIT_SCHEMA = closed({
  domain: NAME,
  enforcement: { enum: ["enforce", "dryRun"] },
  failureMode: { enum: ["allow", "deny", "local"] },
  responseHeaders: { type: "boolean" },
  quota: closed({
    cluster: { type: "string", minLength: 1 },
    authority: { type: "string", minLength: 1 },
    timeoutMs: { type: "integer", minimum: 1, maximum: 60000 },
    tokenEnv: { type: "string", pattern: "^[A-Za-z_][A-Za-z0-9_]*$" },
  }, ["cluster", "authority"]),
  limits: {
    type: "array",
    minItems: 1,
    items: closed({
      name: NAME,
      match: REQUEST_MATCH,
      key: {
        type: "array",
        minItems: 1,
        maxItems: 8,
        items: {
          type: "object",
          additionalProperties: false,
          properties: {
            source: { enum: ["remote_address", "path"] },
            header: { ...HEADER_NAME, minLength: 1 },
            cookie: { type: "string", minLength: 1 },
            constant: { type: "string", minLength: 1 },
          },
          ...ONE_OF_KEYS(["source", "header", "cookie", "constant"]),
        },
      },
      capacity: { type: "integer", minimum: 1 },
      refillPerSecond: { type: "number", minimum: 0 },
      global: closed({ lease: { type: "integer", minimum: 1 }, minLease: { type: "integer", minimum: 1 } }, ["lease"]),
    }, ["name", "key", "capacity", "refillPerSecond"]),
  },
  maxKeysPerLimit: { type: "integer", minimum: 1, maximum: 1048576 },
}, ["domain", "limits"]);

const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
const validators: Record<PluginName, ValidateFunction> = {
  "header-router": ajv.compile(HEADER_ROUTER_SCHEMA),
  "rate-limit": ajv.compile(RATE_LIMIT_SCHEMA),
};

/** The parsed configuration when it is valid JSON of the right shape. */
export interface PluginConfigResult {
  readonly config?: Record<string, unknown>;
  readonly problems: Problem[];
}

/**
 * Validates one plugin configuration given as JSON text (Envoy `configuration` StringValue) or as
 * an already-parsed object (Istio `pluginConfig`). `path` is where the configuration sits in `file`.
 */
export function checkPluginConfig(plugin: PluginName, config: unknown, file: string, path: string): PluginConfigResult {
  let value = config;
  if (typeof config === "string") {
    try {
      value = JSON.parse(config);
    } catch (err) {
      return { problems: [{ file, path, code: "ERR_PLUGIN_CONFIG_JSON", message: `${plugin} configuration is not valid JSON: ${(err as Error).message}` }] };
    }
  }
  const validate = validators[plugin];
  const problems: Problem[] = [];
  if (!validate(value)) {
    for (const e of simplify(validate.errors ?? [])) {
      problems.push({ file, path: ajvErrorPath(path, e), code: "ERR_PLUGIN_CONFIG_INVALID", message: `${plugin}: ${ajvMessage(e)}` });
    }
    return { problems };
  }
  problems.push(...semanticProblems(plugin, value as Record<string, unknown>, file, path));
  return problems.length === 0 ? { config: value as Record<string, unknown>, problems } : { problems };
}

/** Rules a schema cannot state, as the filters enforce them. */
function semanticProblems(plugin: PluginName, c: Record<string, unknown>, file: string, path: string): Problem[] {
  const out: Problem[] = [];
  const problem = (p: string, message: string): void => {
    out.push({ file, path: childPath(path, p), code: "ERR_PLUGIN_CONFIG_INVALID", message: `${plugin}: ${message}` });
  };
  if (plugin === "header-router") {
    const rules = (c["rules"] ?? []) as { name: string }[];
    const seen = new Set<string>();
    rules.forEach((r, i) => {
      if (seen.has(r.name)) problem(`rules[${i}].name`, `duplicate rule name '${r.name}'`);
      seen.add(r.name);
    });
    const routeHeader = String(c["routeHeader"]).toLowerCase();
    ((c["requestHeadersToAdd"] ?? []) as { name: string }[]).forEach((h, i) => {
      if (h.name.toLowerCase() === routeHeader) problem(`requestHeadersToAdd[${i}].name`, "must not be the routeHeader");
    });
    ((c["requestHeadersToRemove"] ?? []) as string[]).forEach((h, i) => {
      if (h.toLowerCase() === routeHeader) problem(`requestHeadersToRemove[${i}]`, "must not be the routeHeader");
    });
  } else {
    const limits = c["limits"] as { name: string; refillPerSecond: number; global?: { lease: number; minLease?: number } }[];
    const seen = new Set<string>();
    let hasGlobal = false;
    limits.forEach((l, i) => {
      if (seen.has(l.name)) problem(`limits[${i}].name`, `duplicate limit name '${l.name}'`);
      seen.add(l.name);
      // The filter keeps refill in milli-tokens and rejects what f64 arithmetic cannot represent exactly.
      const milli = l.refillPerSecond * 1000;
      if (Math.floor(milli) !== milli) problem(`limits[${i}].refillPerSecond`, "at most 3 decimal places");
      if (l.global) {
        hasGlobal = true;
        if (l.global.minLease !== undefined && l.global.minLease > l.global.lease) problem(`limits[${i}].global.minLease`, `must not exceed lease (${l.global.lease})`);
      }
    });
    if (hasGlobal && c["quota"] === undefined) problem("quota", "required when a limit has 'global'");
  }
  return out;
}

/** The routes a header-router configuration can write into its route header. */
export function routerRoutes(config: Record<string, unknown>): string[] {
  const routes = new Set<string>();
  if (typeof config["default"] === "string") routes.add(config["default"]);
  for (const r of (config["rules"] ?? []) as { route?: string; split?: { targets: { route: string }[] } }[]) {
    if (r.route !== undefined) routes.add(r.route);
    for (const t of r.split?.targets ?? []) routes.add(t.route);
  }
  return [...routes];
}

/** Drops the per-branch `required` errors under a oneOf (the oneOf error itself names the alternatives). */
function simplify(errors: readonly ErrorObject[]): ErrorObject[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    if (e.keyword === "required" && e.schemaPath.includes("/oneOf/")) return false;
    const k = `${e.instancePath}|${ajvMessage(e)}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
