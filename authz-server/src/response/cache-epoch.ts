// The decision-cache epoch: a digest of the state decisions depend on besides the request — the
// served policy's version and the live revocation list — so that every authz-server process (workers,
// replicas) with the same state reports the same epoch. The authz-cache filter polls it (GET /cache/epoch)
// and serves only entries learned under the current one.
import { createHash } from "node:crypto";
import type { Revocation } from "../credentials/revocation.js";

export const CACHE_EPOCH_PATH = "/cache/epoch";

export class CacheEpoch {
  private policy = "none";
  private revocations = digest([]);
  private pending: (() => Iterable<Revocation>) | undefined;

  /** `<policy version>.<revocation digest>`; the digest is recomputed once after a change, when asked. */
  value(): string {
    if (this.pending) {
      this.revocations = digest(this.pending());
      this.pending = undefined;
    }
    return `${this.policy}.${this.revocations}`;
  }

  policyChanged(version: string): void {
    this.policy = version;
  }

  revocationsChanged(entries: () => Iterable<Revocation>): void {
    this.pending = entries;
  }
}

function digest(entries: Iterable<Revocation>): string {
  const lines = [...entries].map((e) => JSON.stringify([e.kind, e.provider ?? "*", e.value, e.expiresAt])).sort();
  return createHash("sha256").update(lines.join("\n")).digest("hex").slice(0, 32);
}
