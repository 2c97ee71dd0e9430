// Renders a Decision as an Envoy CheckResponse (proto-loader object form): ok_response with identity
// headers, or denied_response with the JSON body, challenge and decision headers; dynamic metadata on both.
import type { Decision } from "../model.js";
import type { CompiledPolicy } from "../policy/compiled.js";

export const DECISION_ID_HEADER = "x-meshward-decision-id";
export const REASON_HEADER = "x-meshward-reason";

/** google.rpc.Code values used in CheckResponse.status. */
const GRPC_OK = 0;
const GRPC_PERMISSION_DENIED = 7;
const GRPC_UNAVAILABLE = 14;
const GRPC_INTERNAL = 13;

const ERROR_NAMES: Record<number, string> = { 400: "bad_request", 401: "unauthenticated", 403: "forbidden", 431: "request_too_large", 500: "internal_error", 503: "unavailable" };

type HeaderOption = { header: { key: string; value: string }; appendAction: "OVERWRITE_IF_EXISTS_OR_ADD" };

export interface CheckResponseObject {
  status: { code: number; message?: string };
  okResponse?: { headers: HeaderOption[]; headersToRemove: string[]; responseHeadersToAdd: HeaderOption[] };
  deniedResponse?: { status: { code: number }; headers: HeaderOption[]; body: string };
  dynamicMetadata: StructObject;
}

interface StructObject {
  fields: Record<string, { stringValue: string } | { listValue: { values: { stringValue: string }[] } }>;
}

export function renderCheckResponse(decision: Decision, policy: CompiledPolicy): CheckResponseObject {
  const dynamicMetadata = metadata(decision);
  const decisionHeaders = [header(DECISION_ID_HEADER, decision.id), header(REASON_HEADER, decision.reason)];
  if (decision.allowed) {
    const { set, remove } = identityHeaders(decision, policy);
    return {
      status: { code: GRPC_OK },
      okResponse: { headers: [...set, ...decisionHeaders], headersToRemove: [...remove], responseHeadersToAdd: decisionHeaders },
      dynamicMetadata,
    };
  }
  const headers = [header("content-type", "application/json"), ...decisionHeaders];
  if (decision.bearerError !== undefined) headers.push(header("www-authenticate", challenge(policy.response.realm, decision)));
  return {
    status: { code: decision.unavailable ? GRPC_UNAVAILABLE : decision.internal ? GRPC_INTERNAL : GRPC_PERMISSION_DENIED, message: decision.reason },
    deniedResponse: {
      status: { code: decision.httpStatus },
      headers,
      body: JSON.stringify({ error: ERROR_NAMES[decision.httpStatus] ?? "denied", reason: decision.reason, decisionId: decision.id }),
    },
    dynamicMetadata,
  };
}

/** RFC 6750 §3: `Bearer realm="…"`, plus `error` and a fixed description (the reason code, never token contents). */
function challenge(realm: string, d: Decision): string {
  if (!d.bearerError) return `Bearer realm="${realm}"`;
  return `Bearer realm="${realm}", error="${d.bearerError}", error_description="${d.reason}"`;
}

type IdentityHeaders = { readonly set: readonly HeaderOption[]; readonly remove: readonly string[] };

/**
 * Identity headers of a user without a mesh peer, per policy: the verified-token cache hands back the
 * same frozen UserIdentity for every request with that token, so this is computed once per token.
 */
const userHeaders = new WeakMap<CompiledPolicy, WeakMap<object, IdentityHeaders>>();

function identityHeaders(decision: Decision, policy: CompiledPolicy): IdentityHeaders {
  const { user, peer } = decision.identity;
  if (!user || peer || !Object.isFrozen(user)) return computeIdentityHeaders(decision, policy);
  let byUser = userHeaders.get(policy);
  if (!byUser) userHeaders.set(policy, (byUser = new WeakMap()));
  let h = byUser.get(user);
  if (!h) {
    const c = computeIdentityHeaders(decision, policy);
    byUser.set(user, (h = Object.freeze({ set: Object.freeze(c.set), remove: Object.freeze(c.remove) })));
  }
  return h;
}

function computeIdentityHeaders(decision: Decision, policy: CompiledPolicy): { set: HeaderOption[]; remove: string[] } {
  const { user, peer } = decision.identity;
  const set: HeaderOption[] = [];
  const { subjectHeader, rolesHeader } = policy.response;
  const subject = user?.subject || peer?.principal;
  if (subjectHeader && subject) set.push(header(subjectHeader, subject));
  const roles = listValue(user ? user.roles : peer?.roles ?? []);
  if (rolesHeader && roles) set.push(header(rolesHeader, roles));
  const output = user ? policy.providerOutputs.get(user.provider) : undefined;
  for (const { claim, header: name } of output?.claimsToHeaders ?? []) {
    const value = claimValue(user!.claims[claim]);
    if (value !== undefined) set.push(header(name, value));
  }
  // Every identity header of the policy that this decision did not set is removed: a client cannot forge
  // one, whatever the provider and on anonymous rules too (docs/security.md).
  const setNames = new Set(set.map((h) => h.header.key));
  const remove = policy.response.identityHeaders.filter((n) => !setNames.has(n));
  if (output) remove.push(...output.removeHeaders);
  return { set, remove };
}

/**
 * A list as one comma-joined header value. An element that itself holds a comma (or is empty) would read
 * as other elements upstream (`reader,admin`), so such elements are left out: they are refused, not encoded.
 */
function listValue(items: readonly unknown[]): string | undefined {
  const kept = items.map(String).filter((x) => x !== "" && !x.includes(","));
  return kept.length ? kept.join(",") : undefined;
}

function claimValue(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  const s = typeof v === "string" ? v : Array.isArray(v) && v.every((x) => typeof x !== "object") ? listValue(v) : JSON.stringify(v);
  return s === undefined ? undefined : s.replace(/[\r\n\0]/g, " ");
}

function header(key: string, value: string): HeaderOption {
  return { header: { key, value }, appendAction: "OVERWRITE_IF_EXISTS_OR_ADD" };
}

function metadata(d: Decision): StructObject {
  const fields: StructObject["fields"] = {
    decisionId: { stringValue: d.id },
    decision: { stringValue: d.allowed ? "allow" : "deny" },
    reason: { stringValue: d.reason },
  };
  if (d.rule) fields.rule = { stringValue: d.rule };
  const { user, peer } = d.identity;
  if (user) {
    fields.subject = { stringValue: user.subject };
    fields.provider = { stringValue: user.provider };
  }
  if (peer) fields.peer = { stringValue: peer.principal };
  const roles = user ? user.roles : peer?.roles;
  if (roles) fields.roles = { listValue: { values: roles.map((r) => ({ stringValue: r })) } };
  return { fields };
}
