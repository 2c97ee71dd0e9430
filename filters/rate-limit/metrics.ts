// The rate-limit filter's counters, defined once per VM in onConfigure (lib/plugin.ts defineMetrics).
import { defineMetrics } from "../lib/plugin";

const COUNTERS = ["allowed_total", "limited_total", "dry_run_limited_total", "lease_requests_total", "lease_failures_total",
  "pool_exhaustion_waits_total", "failure_mode_total", "cas_retries_total", "slot_collisions_total"];

export class Metrics {
  allowed: u32 = 0;
  limited: u32 = 0;
  dryRunLimited: u32 = 0;
  leaseRequests: u32 = 0;
  leaseFailures: u32 = 0;
  poolWaits: u32 = 0;
  failureMode: u32 = 0;
  casRetries: u32 = 0;
  collisions: u32 = 0;

  define(): void {
    const id = defineMetrics("meshward_rate_limit_", COUNTERS, []);
    this.allowed = id[0]; this.limited = id[1]; this.dryRunLimited = id[2];
    this.leaseRequests = id[3]; this.leaseFailures = id[4]; this.poolWaits = id[5];
    this.failureMode = id[6]; this.casRetries = id[7]; this.collisions = id[8];
  }
}
