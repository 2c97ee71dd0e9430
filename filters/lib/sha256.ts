// SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) over linear memory, streaming, no allocation per
// block: whole blocks are compressed in place with raw loads. Pure; checked against node:crypto in
// test/filters/authz-cache/pure.test.ts.

const K: StaticArray<u32> = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

export class Sha256 {
  private h: StaticArray<u32> = new StaticArray<u32>(8);
  private w: StaticArray<u32> = new StaticArray<u32>(64);
  private block: ArrayBuffer = new ArrayBuffer(64);
  private used: i32 = 0;
  private total: u64 = 0;

  constructor() {
    this.reset();
  }

  reset(): void {
    const h = changetype<usize>(this.h);
    store<u32>(h, 0x6a09e667, 0); store<u32>(h, 0xbb67ae85, 4); store<u32>(h, 0x3c6ef372, 8); store<u32>(h, 0xa54ff53a, 12);
    store<u32>(h, 0x510e527f, 16); store<u32>(h, 0x9b05688c, 20); store<u32>(h, 0x1f83d9ab, 24); store<u32>(h, 0x5be0cd19, 28);
    this.used = 0;
    this.total = 0;
  }

  /** Makes this hasher continue from `other`'s state (a precomputed prefix, hashed once). */
  copyFrom(other: Sha256): void {
    memory.copy(changetype<usize>(this.h), changetype<usize>(other.h), 32);
    memory.copy(changetype<usize>(this.block), changetype<usize>(other.block), <usize>other.used);
    this.used = other.used;
    this.total = other.total;
  }

  update(ptr: usize, len: usize): void {
    this.total += <u64>len;
    let i: usize = 0;
    if (this.used > 0) {
      const take = min<usize>(<usize>(64 - this.used), len);
      memory.copy(changetype<usize>(this.block) + <usize>this.used, ptr, take);
      this.used += <i32>take;
      i = take;
      if (this.used < 64) return;
      this.compress(changetype<usize>(this.block));
      this.used = 0;
    }
    // Whole blocks straight from the caller's memory, no copy.
    while (len - i >= 64) {
      this.compress(ptr + i);
      i += 64;
    }
    if (i < len) {
      memory.copy(changetype<usize>(this.block), ptr + i, len - i);
      this.used = <i32>(len - i);
    }
  }

  updateBuffer(buf: ArrayBuffer): void {
    this.update(changetype<usize>(buf), <usize>buf.byteLength);
  }

  updateString(s: string): void {
    this.updateBuffer(String.UTF8.encode(s));
  }

  /** A big-endian u32 length prefix followed by the bytes: an injective encoding of a field. */
  field(ptr: usize, len: usize): void {
    this.u32(<u32>len);
    this.update(ptr, len);
  }

  fieldBuffer(b: ArrayBuffer): void {
    this.field(changetype<usize>(b), <usize>b.byteLength);
  }

  fieldString(s: string): void {
    this.fieldBuffer(String.UTF8.encode(s));
  }

  u32(v: u32): void {
    const b = changetype<usize>(scratch4);
    store<u32>(b, bswap<u32>(v));
    this.update(b, 4);
  }

  /** Finishes into `out` (32 bytes at `o`); the hasher must be reset before reuse. */
  digestInto(o: usize): void {
    const bits = this.total * 8;
    const b = changetype<usize>(this.block);
    store<u8>(b + <usize>this.used, 0x80);
    this.used++;
    if (this.used > 56) {
      memory.fill(b + <usize>this.used, 0, <usize>(64 - this.used));
      this.compress(b);
      this.used = 0;
    }
    memory.fill(b + <usize>this.used, 0, <usize>(56 - this.used));
    store<u64>(b + 56, bswap<u64>(bits));
    this.compress(b);
    const h = changetype<usize>(this.h);
    for (let i: usize = 0; i < 32; i += 4) store<u32>(o + i, bswap<u32>(load<u32>(h + i)));
  }

  /** Finishes into a new 32-byte buffer; the hasher must be reset before reuse. */
  digest(): ArrayBuffer {
    const out = new ArrayBuffer(32);
    this.digestInto(changetype<usize>(out));
    return out;
  }

  /** One 64-byte block at `p`; raw loads, no bounds checks (the arrays have fixed sizes). */
  private compress(p: usize): void {
    const w = changetype<usize>(this.w);
    const k = changetype<usize>(K);
    for (let i: usize = 0; i < 64; i += 4) store<u32>(w + i, bswap<u32>(load<u32>(p + i)));
    for (let i: usize = 64; i < 256; i += 4) {
      const x = load<u32>(w + i - 60);
      const y = load<u32>(w + i - 8);
      const s0 = rotr<u32>(x, 7) ^ rotr<u32>(x, 18) ^ (x >>> 3);
      const s1 = rotr<u32>(y, 17) ^ rotr<u32>(y, 19) ^ (y >>> 10);
      store<u32>(w + i, load<u32>(w + i - 64) + s0 + load<u32>(w + i - 28) + s1);
    }
    const h = changetype<usize>(this.h);
    let a = load<u32>(h), bb = load<u32>(h, 4), c = load<u32>(h, 8), d = load<u32>(h, 12);
    let e = load<u32>(h, 16), f = load<u32>(h, 20), g = load<u32>(h, 24), hh = load<u32>(h, 28);
    for (let i: usize = 0; i < 256; i += 4) {
      const S1 = rotr<u32>(e, 6) ^ rotr<u32>(e, 11) ^ rotr<u32>(e, 25);
      const ch = (e & f) ^ (~e & g);
      const t1 = hh + S1 + ch + load<u32>(k + i) + load<u32>(w + i);
      const S0 = rotr<u32>(a, 2) ^ rotr<u32>(a, 13) ^ rotr<u32>(a, 22);
      const mj = (a & bb) ^ (a & c) ^ (bb & c);
      const t2 = S0 + mj;
      hh = g; g = f; f = e; e = d + t1; d = c; c = bb; bb = a; a = t1 + t2;
    }
    store<u32>(h, load<u32>(h) + a); store<u32>(h, load<u32>(h, 4) + bb, 4);
    store<u32>(h, load<u32>(h, 8) + c, 8); store<u32>(h, load<u32>(h, 12) + d, 12);
    store<u32>(h, load<u32>(h, 16) + e, 16); store<u32>(h, load<u32>(h, 20) + f, 20);
    store<u32>(h, load<u32>(h, 24) + g, 24); store<u32>(h, load<u32>(h, 28) + hh, 28);
  }
}

const scratch4 = new ArrayBuffer(4);

/** SHA-256 of `len` bytes at `ptr`. */
export function sha256(ptr: usize, len: usize): ArrayBuffer {
  const s = new Sha256();
  s.update(ptr, len);
  return s.digest();
}

/** HMAC-SHA256(key, message). */
export function hmacSha256(key: ArrayBuffer, msgPtr: usize, msgLen: usize): ArrayBuffer {
  let k = key;
  if (k.byteLength > 64) k = sha256(changetype<usize>(k), <usize>k.byteLength);
  const pad = new ArrayBuffer(64);
  const p = changetype<usize>(pad);
  const kp = changetype<usize>(k);
  for (let i = 0; i < 64; i++) store<u8>(p + <usize>i, (i < k.byteLength ? load<u8>(kp + <usize>i) : 0) ^ 0x36);
  const inner = new Sha256();
  inner.update(p, 64);
  inner.update(msgPtr, msgLen);
  const ih = inner.digest();
  for (let i = 0; i < 64; i++) store<u8>(p + <usize>i, load<u8>(p + <usize>i) ^ 0x36 ^ 0x5c);
  const outer = new Sha256();
  outer.update(p, 64);
  outer.update(changetype<usize>(ih), 32);
  return outer.digest();
}

const HEX = "0123456789abcdef";

/** Lower-case hex of a buffer. */
export function toHex(buf: ArrayBuffer): string {
  const p = changetype<usize>(buf);
  let s = "";
  for (let i = 0; i < buf.byteLength; i++) {
    const v = load<u8>(p + <usize>i);
    s += HEX.charAt(v >> 4) + HEX.charAt(v & 15);
  }
  return s;
}

/** Constant-time equality of `len` bytes. */
export function bytesEqual(a: usize, b: usize, len: usize): bool {
  let diff: u32 = 0;
  for (let i: usize = 0; i < len; i++) diff |= <u32>(load<u8>(a + i) ^ load<u8>(b + i));
  return diff == 0;
}
