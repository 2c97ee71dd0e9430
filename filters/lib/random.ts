// Pseudo-random numbers for non-sticky weighted choices: xorshift64* seeded once per VM (from
// WASI random_get, see host.ts). Not for secrets. Pure; the seed is injected.
import { fmix64 } from "./hash";

export class Xorshift64 {
  private state: u64;

  constructor(seed: u64) {
    const s = fmix64(seed);
    this.state = s == 0 ? 0x9e3779b97f4a7c15 : s;
  }

  next(): u64 {
    let x = this.state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    this.state = x;
    return x * 0x2545f4914f6cdd1d;
  }
}
