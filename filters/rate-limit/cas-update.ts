// The one read-modify-write loop over proxy-wasm shared data: every worker VM updates the same
// slot with compare-and-swap, and an update that lost the race re-reads and tries again.
//   cas.begin(key, retriesMetric);
//   while (cas.read()) { …decode cas.value when cas.found…; if (cas.write(newBytes)) break; }
import { CREATE_CAS, HostStatus, SharedData, getSharedData, incrementMetric, setSharedData } from "../lib/host";

/** CAS retries before giving up on one shared-data update (the caller then takes the stricter answer). */
export const MAX_CAS_ATTEMPTS = 64;

/** One CAS loop over one slot; reused (callbacks in one VM never overlap). */
export class CasLoop {
  /** The slot exists (its bytes are in `value`, possibly not a valid record). */
  found: bool = false;
  private shared: SharedData = new SharedData();
  private key: ArrayBuffer = new ArrayBuffer(0);
  private retries: u32 = 0;
  private attempt: i32 = 0;

  /** Starts a loop over `key`; lost races count on metric `retries`. */
  begin(key: ArrayBuffer, retries: u32): void {
    this.key = key;
    this.retries = retries;
    this.attempt = 0;
  }

  /** Reads the slot for the next attempt; false when every attempt lost. */
  read(): bool {
    if (this.attempt >= MAX_CAS_ATTEMPTS) return false;
    this.attempt++;
    this.found = getSharedData(this.key, this.shared) == HostStatus.Ok;
    return true;
  }

  /** The stored bytes (empty when the slot does not exist). */
  get value(): ArrayBuffer {
    return this.shared.value;
  }

  /** Writes `bytes` if the slot is unchanged since `read` (a missing slot is created); false when the race was lost. */
  write(bytes: ArrayBuffer): bool {
    if (setSharedData(this.key, bytes, this.found ? this.shared.cas : CREATE_CAS) == HostStatus.Ok) return true;
    incrementMetric(this.retries, 1);
    return false;
  }
}
