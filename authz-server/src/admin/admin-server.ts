// The admin HTTP listener (separate from the public one, off by default): manages the revocation list
// behind a bearer secret. POST/DELETE/GET /v1/revocations.
import { createHash, timingSafeEqual } from "node:crypto";
import { type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createLimitedHttpServer } from "../http-limits.js";
import { MAX_REVOCATION_VALUE_LENGTH, RevocationStoreUnavailable, type Revocation, type RevocationKind, type RevocationStore } from "../credentials/revocation.js";

export interface AdminServerOptions {
  readonly store: RevocationStore;
  /** The bearer secret callers must present (at least 16 characters). */
  readonly token: string;
  readonly log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** The provider names of the serving policy: a revocation naming another provider is refused (400). */
  readonly knownProviders?: () => ReadonlySet<string> | undefined;
  /** Longest accepted revocation (default 90 days). */
  readonly maxTtlSeconds?: number;
}

export interface AdminServer {
  listen(host: string, port: number): Promise<{ readonly port: number }>;
  close(): Promise<void>;
  /** For tests and embedding: the request handler. */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
}

const MAX_BODY_BYTES = 16 * 1024;
const LIST_LIMIT = 1000;
export const MIN_ADMIN_TOKEN_LENGTH = 16;

class BadRequest extends Error {}

export function createAdminServer(opts: AdminServerOptions): AdminServer {
  if (opts.token.length < MIN_ADMIN_TOKEN_LENGTH) throw new Error(`admin token must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters`);
  const want = createHash("sha256").update(opts.token).digest();
  const maxTtl = opts.maxTtlSeconds ?? 90 * 86_400;

  const authorized = (req: IncomingMessage): boolean => {
    const m = /^Bearer (.+)$/i.exec(req.headers.authorization ?? "");
    if (!m) return false;
    // Both sides hashed to 32 bytes: constant-time whatever the presented length.
    return timingSafeEqual(createHash("sha256").update(m[1]!.trim()).digest(), want);
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://admin");
    if (url.pathname !== "/v1/revocations") return send(res, 404, { error: "not_found" });
    if (!authorized(req)) {
      opts.log?.warn({ method: req.method, remote: req.socket.remoteAddress }, "admin: unauthorized request");
      res.setHeader("www-authenticate", 'Bearer realm="meshward-admin"');
      return send(res, 401, { error: "unauthorized" });
    }
    try {
      if (req.method === "GET") {
        const { entries, truncated } = await opts.store.list(LIST_LIMIT);
        return send(res, 200, { revocations: entries.map(view), truncated });
      }
      if (req.method === "POST") {
        const body = parseRevocationBody(await readBody(req), maxTtl);
        const known = opts.knownProviders?.();
        // A revocation for a provider no credential comes from would revoke nothing, silently.
        if (body.provider !== undefined && known && !known.has(body.provider)) throw new BadRequest(`unknown provider '${body.provider}' (known: ${[...known].join(", ") || "none"})`);
        const e = await opts.store.revoke(body.kind, body.value, body.ttlSeconds * 1000, body.provider);
        opts.log?.info({ kind: e.kind, provider: e.provider, ttlSeconds: body.ttlSeconds }, "admin: revoked");
        return send(res, 201, view(e));
      }
      if (req.method === "DELETE") {
        const { kind, value, provider } = parseSelector(url.searchParams);
        const removed = await opts.store.unrevoke(kind, value, provider);
        opts.log?.info({ kind, provider, removed }, "admin: revocation removed");
        if (!removed) return send(res, 404, { error: "not_found" });
        res.writeHead(204).end();
        return;
      }
      res.setHeader("allow", "GET, POST, DELETE");
      return send(res, 405, { error: "method_not_allowed" });
    } catch (err) {
      if (err instanceof BadRequest) return send(res, 400, { error: "bad_request", detail: err.message });
      if (err instanceof RevocationStoreUnavailable) return send(res, 503, { error: "store_unavailable", detail: err.message });
      throw err;
    }
  }

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((err: unknown) => {
      opts.log?.warn({ err: (err as Error).message }, "admin: request failed");
      if (!res.headersSent) send(res, 500, { error: "internal_error" });
      else res.destroy();
    });
  };

  let server: Server | undefined;
  return {
    handler,
    listen(host, port) {
      const s = createLimitedHttpServer(handler);
      server = s;
      return new Promise((resolve, reject) => {
        s.once("error", reject);
        s.listen(port, host, () => {
          s.off("error", reject);
          resolve({ port: (s.address() as AddressInfo).port });
        });
      });
    },
    close() {
      const s = server;
      server = undefined;
      if (!s) return Promise.resolve();
      return new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      });
    },
  };
}

function view(e: Revocation): Record<string, unknown> {
  return { [e.kind]: e.value, ...(e.provider ? { provider: e.provider } : {}), expiresAt: new Date(e.expiresAt).toISOString() };
}

/** Validates `{"jti"|"sub": string, "ttlSeconds": int, "provider"?: string}`; unknown keys are errors. */
export function parseRevocationBody(raw: string, maxTtlSeconds: number): { kind: RevocationKind; value: string; ttlSeconds: number; provider?: string } {
  let o: unknown;
  try {
    o = JSON.parse(raw);
  } catch {
    throw new BadRequest("body is not JSON");
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw new BadRequest("body must be a JSON object");
  const b = o as Record<string, unknown>;
  for (const k of Object.keys(b)) if (!["jti", "sub", "ttlSeconds", "provider"].includes(k)) throw new BadRequest(`unknown key '${k}'`);
  if ((b.jti === undefined) === (b.sub === undefined)) throw new BadRequest("exactly one of 'jti' or 'sub' is required");
  const kind: RevocationKind = b.jti !== undefined ? "jti" : "sub";
  const value = b[kind];
  if (typeof value !== "string" || value === "" || value.length > MAX_REVOCATION_VALUE_LENGTH) throw new BadRequest(`'${kind}' must be a non-empty string of at most ${MAX_REVOCATION_VALUE_LENGTH} characters`);
  const ttl = b.ttlSeconds;
  if (typeof ttl !== "number" || !Number.isInteger(ttl) || ttl < 1 || ttl > maxTtlSeconds) throw new BadRequest(`'ttlSeconds' must be an integer from 1 to ${maxTtlSeconds}`);
  if (b.provider !== undefined && (typeof b.provider !== "string" || b.provider === "")) throw new BadRequest("'provider' must be a non-empty string");
  return { kind, value, ttlSeconds: ttl, ...(typeof b.provider === "string" ? { provider: b.provider } : {}) };
}

function parseSelector(q: URLSearchParams): { kind: RevocationKind; value: string; provider?: string } {
  for (const k of q.keys()) if (!["jti", "sub", "provider"].includes(k)) throw new BadRequest(`unknown query parameter '${k}'`);
  const jti = q.get("jti");
  const sub = q.get("sub");
  if ((jti === null) === (sub === null)) throw new BadRequest("exactly one of ?jti= or ?sub= is required");
  const kind: RevocationKind = jti !== null ? "jti" : "sub";
  const value = (jti ?? sub)!;
  if (value === "" || value.length > MAX_REVOCATION_VALUE_LENGTH) throw new BadRequest(`'${kind}' must be a non-empty string`);
  const provider = q.get("provider");
  return { kind, value, ...(provider ? { provider } : {}) };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > MAX_BODY_BYTES) throw new BadRequest(`body larger than ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new BadRequest(`body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "cache-control": "no-store" });
  res.end(text);
}
