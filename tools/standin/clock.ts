// Clocks for the stand-in: a manual clock the test advances (delivering due timers in order) and the system clock.

export interface TimerHandle { readonly id: number }

export interface Clock {
  /** Wall-clock time in ms since the epoch (may be fractional). */
  nowMs(): number;
  /** Monotonic time in ns. */
  monotonicNs(): bigint;
  /** Runs `fn` once `delayMs` from now. */
  schedule(delayMs: number, fn: () => void): TimerHandle;
  cancel(handle: TimerHandle): void;
}

interface Timer { id: number; at: number; seq: number; fn: () => void }

/** A clock that only moves when the test calls `advance`; timers fire in due order during `advance`. */
export class ManualClock implements Clock {
  private wallMs: number;
  private monoMs = 0;
  private timers: Timer[] = [];
  private nextId = 1;
  private seq = 0;

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.wallMs = startMs;
  }

  nowMs(): number {
    return this.wallMs;
  }

  monotonicNs(): bigint {
    return BigInt(Math.round(this.monoMs * 1e6));
  }

  schedule(delayMs: number, fn: () => void): TimerHandle {
    const t: Timer = { id: this.nextId++, at: this.monoMs + Math.max(0, delayMs), seq: this.seq++, fn };
    this.timers.push(t);
    return { id: t.id };
  }

  cancel(handle: TimerHandle): void {
    const i = this.timers.findIndex((t) => t.id === handle.id);
    if (i >= 0) this.timers.splice(i, 1);
  }

  /** Number of scheduled timers (for assertions). */
  get pendingTimers(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, at its due time, in order. */
  advance(ms: number): void {
    const target = this.monoMs + ms;
    for (;;) {
      let next: Timer | undefined;
      for (const t of this.timers) if (t.at <= target && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      if (!next) break;
      this.timers.splice(this.timers.indexOf(next), 1);
      this.wallMs += next.at - this.monoMs;
      this.monoMs = next.at;
      next.fn();
    }
    this.wallMs += target - this.monoMs;
    this.monoMs = target;
  }

  /** Sets the wall clock (monotonic time is unaffected, as with a real clock step). */
  setWallMs(ms: number): void {
    this.wallMs = ms;
  }
}

/** Real time; timers are Node timers (unref'd so they never keep a test process alive). */
export class SystemClock implements Clock {
  private readonly handles = new Map<number, NodeJS.Timeout>();
  private nextId = 1;

  nowMs(): number {
    return Date.now();
  }

  monotonicNs(): bigint {
    return process.hrtime.bigint();
  }

  schedule(delayMs: number, fn: () => void): TimerHandle {
    const id = this.nextId++;
    const h = setTimeout(() => {
      this.handles.delete(id);
      fn();
    }, delayMs);
    h.unref();
    this.handles.set(id, h);
    return { id };
  }

  cancel(handle: TimerHandle): void {
    const h = this.handles.get(handle.id);
    if (h) clearTimeout(h);
    this.handles.delete(handle.id);
  }
}
