// A local limit's token bucket in shared data: one slot per key fingerprint, shared by every
// worker VM, taken with the CAS loop. The bucket arithmetic is in token-bucket.ts.
import { incrementMetric } from "../lib/host";
import { CasLoop } from "./cas-update";
import { Limit } from "./config";
import { Metrics } from "./metrics";
import { BucketState, remainingTokens, secondsUntilFull, secondsUntilToken, takeToken } from "./token-bucket";

/** Takes one token from a limit's bucket slot; the outcome stays readable in the fields after `run`. */
export class LocalTake {
  admitted: bool = false;
  remaining: i64 = 0;
  retryAfter: i64 = -1;
  reset: i64 = -1;
  private bucket: BucketState = new BucketState();
  private cas: CasLoop = new CasLoop();
  private metrics: Metrics;

  constructor(metrics: Metrics) {
    this.metrics = metrics;
  }

  /** Takes a token for key `fp` of `limit` in slot `slot`; true when admitted. */
  run(limit: Limit, fp: u64, slot: u32, nowNs: i64): bool {
    const spec = limit.bucket;
    const bucket = this.bucket;
    const cas = this.cas;
    cas.begin(String.UTF8.encode(limit.bucketPrefix + slot.toString()), this.metrics.casRetries);
    while (cas.read()) {
      if (cas.found && bucket.decode(cas.value)) {
        if (bucket.fingerprint != fp) {
          incrementMetric(this.metrics.collisions, 1);
          bucket.fingerprint = fp;
        }
      } else {
        bucket.reset(fp, spec, nowNs);
      }
      const admitted = takeToken(bucket, spec, nowNs);
      this.admitted = admitted;
      this.remaining = remainingTokens(bucket);
      this.retryAfter = admitted ? -1 : secondsUntilToken(bucket, spec);
      this.reset = secondsUntilFull(bucket, spec);
      if (!admitted || cas.write(bucket.encode())) return admitted;
    }
    this.admitted = false;
    this.retryAfter = 1;
    return false;
  }
}
