// Maps a limit key to a fixed slot in [0, maxKeysPerLimit) plus a 64-bit fingerprint, so shared
// data holds at most maxKeysPerLimit entries per limit however many distinct keys arrive.
// Pure; see filters/rate-limit/README.md ("Slot scheme") for what a collision does.
import { stableHash } from "../lib/hash";

/** The fingerprint of a scoped key (domain, limit name and key components); never 0 (0 = empty slot). */
export function keyFingerprint(scopedKey: string): u64 {
  const h = stableHash(scopedKey);
  return h == 0 ? 1 : h;
}

/** The slot of a fingerprint, in [0, slots). */
export function slotOf(fingerprint: u64, slots: u32): u32 {
  return <u32>(fingerprint % <u64>slots);
}
