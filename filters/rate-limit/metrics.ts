// The rate-limit filter's counters, defined once per VM in onConfigure.
import { MetricKind, defineMetric } from "../lib/host";

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
    this.allowed = defineMetric(MetricKind.Counter, "meshward_rate_limit_allowed_total");
    this.limited = defineMetric(MetricKind.Counter, "meshward_rate_limit_limited_total");
    this.dryRunLimited = defineMetric(MetricKind.Counter, "meshward_rate_limit_dry_run_limited_total");
    this.leaseRequests = defineMetric(MetricKind.Counter, "meshward_rate_limit_lease_requests_total");
    this.leaseFailures = defineMetric(MetricKind.Counter, "meshward_rate_limit_lease_failures_total");
    this.poolWaits = defineMetric(MetricKind.Counter, "meshward_rate_limit_pool_exhaustion_waits_total");
    this.failureMode = defineMetric(MetricKind.Counter, "meshward_rate_limit_failure_mode_total");
    this.casRetries = defineMetric(MetricKind.Counter, "meshward_rate_limit_cas_retries_total");
    this.collisions = defineMetric(MetricKind.Counter, "meshward_rate_limit_slot_collisions_total");
  }
}
