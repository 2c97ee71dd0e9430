// Stage 4: combines the verified user (if any) and the mesh peer into one Identity, adding the roles
// that `bindings` give to the user's subject or the peer's SPIFFE ID.
import type { Attributes, Identity, PeerIdentity, UserIdentity } from "../model.js";
import type { CompiledPolicy } from "../policy/compiled.js";
import { parseSpiffeId } from "./spiffe.js";

/** A peer outside the configured trust domains (or with an invalid SPIFFE ID) counts as no peer. */
export function resolvePeer(attrs: Attributes, policy: CompiledPolicy): PeerIdentity | undefined {
  const principal = attrs.source.principal;
  if (!principal || policy.trustDomains.size === 0) return undefined;
  const id = parseSpiffeId(principal);
  if (!id || !policy.trustDomains.has(id.trustDomain)) return undefined;
  return { kind: "peer", principal, ...id, roles: policy.bindings.get(principal) ?? [] };
}

export function resolveIdentity(attrs: Attributes, user: UserIdentity | undefined, policy: CompiledPolicy): Identity {
  const peer = resolvePeer(attrs, policy);
  const bound = user ? policy.bindings.get(user.subject) : undefined;
  const withBindings = user && bound ? { ...user, roles: [...new Set([...user.roles, ...bound])] } : user;
  return { ...(withBindings ? { user: withBindings } : {}), ...(peer ? { peer } : {}) };
}
