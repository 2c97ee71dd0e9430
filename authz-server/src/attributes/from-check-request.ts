// Stage 1: normalizes an Envoy CheckRequest (as decoded by proto-loader) into `Attributes`: method,
// path without query, query map, host, lower-cased headers, source/destination, context_extensions.
import type { Attributes } from "../model.js";

/** The subset of `envoy.service.auth.v3.CheckRequest` (proto-loader object form) that we read. */
export interface CheckRequestObject {
  attributes?: {
    source?: PeerObject | null;
    destination?: PeerObject | null;
    request?: {
      http?: {
        method?: string;
        headers?: Record<string, string> | null;
        headerMap?: { headers?: { key?: string; value?: string; rawValue?: Buffer | Uint8Array }[] } | null;
        path?: string;
        host?: string;
        scheme?: string;
        protocol?: string;
      } | null;
    } | null;
    contextExtensions?: Record<string, string> | null;
  } | null;
}

interface PeerObject {
  address?: { socketAddress?: { address?: string } | null; pipe?: { path?: string } | null } | null;
  principal?: string;
  certificate?: string;
}

const EMPTY: Readonly<Record<string, string>> = Object.freeze({});

/** Builds the normalized attributes of one Check; never throws on odd input (missing fields become ""). */
export function attributesFromCheckRequest(req: CheckRequestObject): Attributes {
  const a = req.attributes ?? {};
  const http = a.request?.http ?? {};
  const headers: Record<string, string> = Object.create(null);
  let headerBytes = 0;
  let headerCount = 0;
  if (http.headers) {
    for (const name in http.headers) {
      const value = String(http.headers[name] ?? "");
      addHeader(headers, name, value);
      headerBytes += name.length + value.length;
      headerCount++;
    }
  }
  for (const h of http.headerMap?.headers ?? []) {
    const name = h.key ?? "";
    const value = h.value || (h.rawValue ? Buffer.from(h.rawValue).toString("latin1") : "");
    addHeader(headers, name, value);
    headerBytes += name.length + value.length;
    headerCount++;
  }
  const target = http.path || headers[":path"] || "";
  const q = target.indexOf("?");
  const pathAndFragment = q < 0 ? target : target.slice(0, q);
  const hash = pathAndFragment.indexOf("#");
  const parsed = q < 0 ? undefined : parseQueryWithRepeats(target.slice(q + 1));
  return {
    method: (http.method || headers[":method"] || "").toUpperCase(),
    path: hash < 0 ? pathAndFragment : pathAndFragment.slice(0, hash),
    query: parsed ? parsed.query : EMPTY,
    ...(parsed?.repeated !== undefined ? { repeatedQuery: parsed.repeated } : {}),
    host: (http.host || headers[":authority"] || headers.host || "").toLowerCase(),
    scheme: http.scheme || headers[":scheme"] || headers["x-forwarded-proto"] || "",
    headers,
    source: {
      address: peerAddress(a.source),
      principal: a.source?.principal ?? "",
      certificate: a.source?.certificate ?? "",
    },
    destination: { address: peerAddress(a.destination), principal: a.destination?.principal ?? "" },
    contextExtensions: a.contextExtensions ?? EMPTY,
    headerBytes,
    headerCount,
  };
}

function addHeader(headers: Record<string, string>, rawName: string, value: string): void {
  const name = rawName.toLowerCase();
  const prev = headers[name];
  headers[name] = prev === undefined ? value : `${prev},${value}`;
}

function peerAddress(peer: PeerObject | null | undefined): string {
  return peer?.address?.socketAddress?.address ?? peer?.address?.pipe?.path ?? "";
}

/** First value wins for repeated parameters; undecodable escapes keep their raw text. */
export function parseQuery(qs: string): Record<string, string> {
  return parseQueryWithRepeats(qs).query;
}

/** The query map, and the first parameter repeated with a different value (the pipeline refuses to pick one). */
export function parseQueryWithRepeats(qs: string): { query: Record<string, string>; repeated?: string } {
  const out: Record<string, string> = Object.create(null);
  let repeated: string | undefined;
  const hash = qs.indexOf("#");
  const body = hash < 0 ? qs : qs.slice(0, hash);
  for (const part of body.split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const key = decode(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? "" : decode(part.slice(eq + 1));
    if (key in out) {
      if (repeated === undefined && out[key] !== value) repeated = key;
      continue;
    }
    out[key] = value;
  }
  return repeated === undefined ? { query: out } : { query: out, repeated };
}

function decode(s: string): string {
  const plus = s.includes("+") ? s.replace(/\+/g, " ") : s;
  if (!plus.includes("%")) return plus;
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}
