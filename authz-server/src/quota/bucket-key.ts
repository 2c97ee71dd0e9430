// Storage keys for buckets: `meshward:q:{domain/limit/key}` with each part URI-encoded so parts cannot
// run into each other, a Redis Cluster hash tag around the bucket, and long keys replaced by SHA-256.
import { createHash } from "node:crypto";

/** Encoded client keys longer than this are stored as `#` + SHA-256 hex (`#` never survives encoding). */
export const MAX_ENCODED_KEY_CHARS = 128;

export function bucketKey(domain: string, limit: string, key: string): string {
  let k = encodeURIComponent(key);
  if (k.length > MAX_ENCODED_KEY_CHARS) k = "#" + createHash("sha256").update(key, "utf8").digest("hex");
  return `meshward:q:{${encodeURIComponent(domain)}/${encodeURIComponent(limit)}/${k}}`;
}
