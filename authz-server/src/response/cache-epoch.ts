// The decision-cache epoch: changes on every policy reload, every revocation change and every restart;
// the authz-cache filter polls it (GET /cache/epoch) and serves only entries learned in the current one.
import { randomBytes } from "node:crypto";

export const CACHE_EPOCH_PATH = "/cache/epoch";

export class CacheEpoch {
  private readonly boot = randomBytes(8).toString("hex");
  private reloads = 0;
  private revocations = 0;

  /** `<boot id>.<reload count>.<revocation generation>`. */
  value(): string {
    return `${this.boot}.${this.reloads}.${this.revocations}`;
  }

  policyChanged(): void {
    this.reloads++;
  }

  revocationsChanged(): void {
    this.revocations++;
  }
}
