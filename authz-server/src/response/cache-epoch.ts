// The decision-cache epoch: a digest of the state decisions depend on besides the request — the
// served policy's version, the live revocation list and the JWT providers' current key sets — so that
// every authz-server process (workers, replicas) with the same state reports the same epoch. The
// authz-cache filter polls it (GET /cache/epoch) and serves only entries learned under the current one.
import { createHash } from "node:crypto";
import type { Revocation } from "../credentials/revocation.js";

export const CACHE_EPOCH_PATH = "/cache/epoch";

export class CacheEpoch {
  private policy = "none";
  private revocations = "";
  private keySets = "";
  private keys: () => string = () => "";
  private state = digest("", "");
  private pending: (() => Iterable<Revocation>) | undefined;

  /** `<policy version>.<digest of revocations and key sets>`; the digest is recomputed once after a change, when asked. */
  value(): string {
    const keys = this.keys();
    if (this.pending || keys !== this.keySets) {
      if (this.pending) this.revocations = revocationLines(this.pending());
      this.pending = undefined;
      this.keySets = keys;
      this.state = digest(this.revocations, keys);
    }
    return `${this.policy}.${this.state}`;
  }

  policyChanged(version: string): void {
    this.policy = version;
  }

  revocationsChanged(entries: () => Iterable<Revocation>): void {
    this.pending = entries;
  }

  /** Where the served key sets are read (credentials' keySetId): a JWKS refresh that changes a set changes the epoch. */
  keysFrom(read: () => string): void {
    this.keys = read;
  }
}

function revocationLines(entries: Iterable<Revocation>): string {
  return [...entries].map((e) => JSON.stringify([e.kind, e.provider ?? "*", e.value, e.expiresAt])).sort().join("\n");
}

function digest(revocations: string, keySets: string): string {
  return createHash("sha256").update(revocations).update("\n\0keys\n").update(keySets).digest("hex").slice(0, 32);
}
