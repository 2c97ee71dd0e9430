// Stable 64-bit hash for sticky routing and bucket keys: FNV-1a 64 over the UTF-8 bytes,
// followed by the MurmurHash3 fmix64 finalizer so that every bit (and thus `hash % n`) is well
// mixed. No seed: the same bytes give the same hash in every VM, proxy and release. Pure.

const FNV_OFFSET: u64 = 0xcbf29ce484222325;
const FNV_PRIME: u64 = 0x100000001b3;

/** Hash of `len` bytes at linear-memory address `ptr`. */
export function stableHashBytes(ptr: usize, len: usize): u64 {
  let h = FNV_OFFSET;
  for (let i: usize = 0; i < len; i++) {
    h ^= <u64>load<u8>(ptr + i);
    h *= FNV_PRIME;
  }
  return fmix64(h);
}

/** Hash of the UTF-8 encoding of `s` (computed without allocating). */
export function stableHash(s: string): u64 {
  let h = FNV_OFFSET;
  const len = s.length;
  for (let i = 0; i < len; i++) {
    let c = <u32>s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < len) {
      const lo = <u32>s.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo < 0xe000) {
        c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
        i++;
      }
    }
    if (c < 0x80) {
      h = (h ^ c) * FNV_PRIME;
    } else if (c < 0x800) {
      h = (h ^ (0xc0 | (c >> 6))) * FNV_PRIME;
      h = (h ^ (0x80 | (c & 0x3f))) * FNV_PRIME;
    } else if (c < 0x10000) {
      h = (h ^ (0xe0 | (c >> 12))) * FNV_PRIME;
      h = (h ^ (0x80 | ((c >> 6) & 0x3f))) * FNV_PRIME;
      h = (h ^ (0x80 | (c & 0x3f))) * FNV_PRIME;
    } else {
      h = (h ^ (0xf0 | (c >> 18))) * FNV_PRIME;
      h = (h ^ (0x80 | ((c >> 12) & 0x3f))) * FNV_PRIME;
      h = (h ^ (0x80 | ((c >> 6) & 0x3f))) * FNV_PRIME;
      h = (h ^ (0x80 | (c & 0x3f))) * FNV_PRIME;
    }
  }
  return fmix64(h);
}

/** MurmurHash3's 64-bit finalizer. */
export function fmix64(k: u64): u64 {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccd;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53;
  k ^= k >> 33;
  return k;
}
