// A consecutive-failure circuit breaker for calls to an external endpoint (token introspection): after
// `failureThreshold` failures in a row it opens for `openMs`, then lets one trial call through (half-open).

export type BreakerState = "closed" | "open" | "half_open";

export interface CircuitBreakerOptions {
  readonly failureThreshold: number;
  readonly openMs: number;
  readonly now: () => number;
  readonly onStateChange?: (state: BreakerState) => void;
}

export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private trialInFlight = false;
  private current: BreakerState = "closed";

  constructor(private readonly opts: CircuitBreakerOptions) {}

  get state(): BreakerState {
    if (this.current === "open" && this.opts.now() - this.openedAt >= this.opts.openMs) return "half_open";
    return this.current;
  }

  /** Whether a call may go out now; in half-open state only one trial call at a time is admitted. */
  tryAcquire(): boolean {
    const s = this.state;
    if (s === "closed") return true;
    if (s === "open" || this.trialInFlight) return false;
    this.trialInFlight = true;
    this.transition("half_open");
    return true;
  }

  onSuccess(): void {
    this.failures = 0;
    this.trialInFlight = false;
    this.transition("closed");
  }

  onFailure(): void {
    this.trialInFlight = false;
    this.failures++;
    if (this.current === "half_open" || this.failures >= this.opts.failureThreshold) {
      this.openedAt = this.opts.now();
      this.transition("open");
    }
  }

  /** Milliseconds until a trial call is admitted (0 unless open). */
  retryInMs(): number {
    return this.current === "open" ? Math.max(0, this.openedAt + this.opts.openMs - this.opts.now()) : 0;
  }

  private transition(s: BreakerState): void {
    if (s === this.current) return;
    this.current = s;
    this.opts.onStateChange?.(s);
  }
}
