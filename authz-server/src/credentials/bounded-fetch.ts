// Fetches one small JSON document (JWKS, OIDC discovery, token introspection) with a whole-request
// timeout and a byte limit, never following redirects. Failures carry stable codes.

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export type FetchFailureCode = "timeout" | "too_large" | "http_status" | "network" | "invalid_json";

export class FetchFailed extends Error {
  constructor(readonly code: FetchFailureCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FetchFailed";
  }
}

export interface FetchedJson {
  readonly body: unknown;
  readonly status: number;
  /** `Cache-Control: max-age` in seconds; 0 for `no-store`/`no-cache`; absent when not given. */
  readonly maxAgeSeconds?: number;
}

export interface BoundedFetchOptions {
  readonly fetch: FetchLike;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly init?: RequestInit;
}

/** GETs (or sends `init`) and parses a JSON body; rejects with `FetchFailed`. */
export async function fetchJson(url: string, opts: BoundedFetchOptions): Promise<FetchedJson> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; controller.abort(); }, opts.timeoutMs);
  timer.unref?.();
  try {
    let res: Response;
    try {
      res = await opts.fetch(url, { redirect: "error", ...opts.init, signal: controller.signal });
    } catch (err) {
      if (timedOut) throw new FetchFailed("timeout", `no response within ${opts.timeoutMs} ms`, { cause: err });
      throw new FetchFailed("network", `request failed: ${describe(err)}`, { cause: err });
    }
    if (res.status < 200 || res.status > 299) {
      await res.body?.cancel().catch(() => undefined);
      throw new FetchFailed("http_status", `HTTP ${res.status}`);
    }
    const declared = Number(res.headers.get("content-length") ?? "NaN");
    if (Number.isFinite(declared) && declared > opts.maxBytes) {
      await res.body?.cancel().catch(() => undefined);
      throw new FetchFailed("too_large", `body of ${declared} bytes exceeds ${opts.maxBytes}`);
    }
    const text = await readLimited(res, opts.maxBytes, controller, () => timedOut, opts.timeoutMs);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw new FetchFailed("invalid_json", "body is not JSON", { cause: err });
    }
    const maxAgeSeconds = parseMaxAge(res.headers.get("cache-control"));
    return maxAgeSeconds === undefined ? { body, status: res.status } : { body, status: res.status, maxAgeSeconds };
  } finally {
    clearTimeout(timer);
  }
}

async function readLimited(res: Response, maxBytes: number, controller: AbortController, timedOut: () => boolean, timeoutMs: number): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        controller.abort();
        throw new FetchFailed("too_large", `body exceeds ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof FetchFailed) throw err;
    if (timedOut()) throw new FetchFailed("timeout", `body not received within ${timeoutMs} ms`, { cause: err });
    throw new FetchFailed("network", `reading body failed: ${describe(err)}`, { cause: err });
  }
  return Buffer.concat(chunks, total).toString("utf8");
}

/** `max-age` seconds from a Cache-Control header; 0 for no-store/no-cache. */
export function parseMaxAge(header: string | null): number | undefined {
  if (!header) return undefined;
  const h = header.toLowerCase();
  if (/(^|[\s,])(no-store|no-cache)($|[\s,=])/.test(h)) return 0;
  const m = /(?:^|[\s,])max-age\s*=\s*"?(\d{1,10})"?/.exec(h);
  return m ? Number(m[1]) : undefined;
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
  }
  return String(err);
}
