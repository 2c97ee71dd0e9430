// Mesh identity: parses SPIFFE IDs (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>)
// from Envoy's `source.principal`; only configured trust domains count.

export interface SpiffeId {
  readonly trustDomain: string;
  /** Empty when the path is not Istio's `/ns/<ns>/sa/<sa>` form. */
  readonly namespace: string;
  readonly serviceAccount: string;
}

const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._~!$&'()*+,;=:@%-]+$/;

/** Parses a SPIFFE ID strictly (lower-case scheme and trust domain, no query/fragment/port/userinfo); undefined when invalid. */
export function parseSpiffeId(id: string): SpiffeId | undefined {
  if (!id.startsWith("spiffe://") || id.length > 2048) return undefined;
  const rest = id.slice("spiffe://".length);
  const slash = rest.indexOf("/");
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  if (!TRUST_DOMAIN.test(trustDomain)) return undefined;
  if (slash < 0) return { trustDomain, namespace: "", serviceAccount: "" };
  const segments = rest.slice(slash + 1).split("/");
  if (segments.some((s) => !SEGMENT.test(s) || s === "." || s === "..")) return undefined;
  if (segments.length === 4 && segments[0] === "ns" && segments[2] === "sa") {
    return { trustDomain, namespace: segments[1]!, serviceAccount: segments[3]! };
  }
  return { trustDomain, namespace: "", serviceAccount: "" };
}
