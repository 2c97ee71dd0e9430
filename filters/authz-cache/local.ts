// This worker's table of the decisions it served, found without SHA-256: an entry is keyed by the
// exact bytes the SHA-256 key would hash (README "Bounded memory"), compared in full, so a lookup costs
// a copy, a fast hash and a compare instead of the digest. Pure: linear memory only.
import { fmix64 } from "../lib/hash";
import { Directive } from "./directive";

/** Key material longer than this (a very long token) is not kept here: such requests take the SHA-256 path. */
export const MAX_MATERIAL: i32 = 2048;
export const LOCAL_SIZE: i32 = 512;
const MIX: u64 = 0x9e3779b97f4a7c15;

/**
 * The encoded attribute values of one request under one shape: the same length-prefixed fields,
 * in the same order, as the SHA-256 key (key.ts keyFields), so equal material means an equal key.
 */
export class KeyMaterial {
  /** Padded to whole u64 words for hashing and comparing. */
  readonly buf: ArrayBuffer = new ArrayBuffer(MAX_MATERIAL + 8);
  len: i32 = 0;
  overflow: bool = false;

  reset(): void {
    this.len = 0;
    this.overflow = false;
  }

  u32(v: u32): void {
    if (this.len + 4 > MAX_MATERIAL) {
      this.overflow = true;
      return;
    }
    store<u32>(changetype<usize>(this.buf) + <usize>this.len, v);
    this.len += 4;
  }

  field(ptr: usize, len: usize): void {
    this.u32(<u32>len);
    if (this.overflow || <usize>this.len + len > <usize>MAX_MATERIAL) {
      this.overflow = true;
      return;
    }
    memory.copy(changetype<usize>(this.buf) + <usize>this.len, ptr, len);
    this.len += <i32>len;
  }

  fieldString(s: string): void {
    const b = String.UTF8.encode(s);
    this.field(changetype<usize>(b), <usize>b.byteLength);
  }

  /**
   * A 64-bit hash of the material, seeded (a per-VM random seed, so a client cannot aim at one slot).
   * Zeroes the padding after the last byte, which `LocalEntry.match` and `set` rely on.
   */
  hash(seed: u64): u64 {
    const p = changetype<usize>(this.buf);
    const words = <usize>((this.len + 7) >> 3);
    if (words > 0) store<u64>(p + (words << 3) - 8, load<u64>(p + (words << 3) - 8) & tailMask(this.len));
    let h = seed ^ (<u64>this.len * MIX);
    for (let i: usize = 0; i < words; i++) h = rotl<u64>((h ^ load<u64>(p + (i << 3))) * MIX, 29);
    return fmix64(h);
  }
}

/** Keeps the bytes of the last u64 word that belong to a material of `len` bytes (the rest reads as 0). */
function tailMask(len: i32): u64 {
  const rest = len & 7;
  return rest == 0 ? 0xffffffffffffffff : (<u64>1 << (<u64>rest * 8)) - 1;
}

export class LocalEntry {
  material: ArrayBuffer = new ArrayBuffer(0);
  len: i32 = -1;
  /** The (shape, epoch) the material was encoded under (key.ts shapeEpochId). */
  shapeEpoch: u32 = 0;
  expiresAtMs: f64 = 0;
  directive: Directive | null = null;

  /** This entry's decision for `m` under `shapeEpoch` at `nowMs`, or null. */
  match(m: KeyMaterial, shapeEpoch: u32, nowMs: i64): Directive | null {
    if (this.directive === null || this.shapeEpoch != shapeEpoch || this.len != m.len || <i64>this.expiresAtMs <= nowMs) return null;
    const a = changetype<usize>(this.material);
    const b = changetype<usize>(m.buf);
    const words = <usize>((m.len + 7) >> 3);
    for (let i: usize = 0; i < words; i++) if (load<u64>(a + (i << 3)) != load<u64>(b + (i << 3))) return null;
    return this.directive;
  }

  set(m: KeyMaterial, shapeEpoch: u32, expiresAtMs: f64, d: Directive): void {
    const bytes = ((m.len + 7) >> 3) << 3;
    if (this.material.byteLength < bytes) this.material = new ArrayBuffer(bytes);
    memory.copy(changetype<usize>(this.material), changetype<usize>(m.buf), <usize>bytes);
    this.len = m.len;
    this.shapeEpoch = shapeEpoch;
    this.expiresAtMs = expiresAtMs;
    this.directive = d;
  }
}

/** A direct-mapped table of LOCAL_SIZE entries; memory ≤ LOCAL_SIZE × (MAX_MATERIAL + an entry). */
export class LocalTable {
  private readonly entries: StaticArray<LocalEntry> = new StaticArray<LocalEntry>(LOCAL_SIZE);
  private readonly seed: u64;

  constructor(seed: u64) {
    this.seed = fmix64(seed);
    for (let i = 0; i < LOCAL_SIZE; i++) this.entries[i] = new LocalEntry();
  }

  /** The entry `m` under `shapeEpoch` maps to (it may hold another key: use `match`). */
  slot(m: KeyMaterial, shapeEpoch: u32): LocalEntry {
    const h = m.hash(this.seed ^ (<u64>shapeEpoch * MIX));
    return unchecked(this.entries[<i32>(h % <u64>LOCAL_SIZE)]);
  }
}
