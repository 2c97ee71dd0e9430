// SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) over linear memory, streaming, no allocation per
// block. Pure; checked against node:crypto in test/filters/authz-cache/sha256.test.ts.

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
    const h = this.h;
    h[0] = 0x6a09e667; h[1] = 0xbb67ae85; h[2] = 0x3c6ef372; h[3] = 0xa54ff53a;
    h[4] = 0x510e527f; h[5] = 0x9b05688c; h[6] = 0x1f83d9ab; h[7] = 0x5be0cd19;
    this.used = 0;
    this.total = 0;
  }

  update(ptr: usize, len: usize): void {
    const b = changetype<usize>(this.block);
    this.total += <u64>len;
    let i: usize = 0;
    while (i < len) {
      const take = min<usize>(<usize>(64 - this.used), len - i);
      memory.copy(b + <usize>this.used, ptr + i, take);
      this.used += <i32>take;
      i += take;
      if (this.used == 64) {
        this.compress();
        this.used = 0;
      }
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

  fieldString(s: string): void {
    const b = String.UTF8.encode(s);
    this.field(changetype<usize>(b), <usize>b.byteLength);
  }

  u32(v: u32): void {
    const b = changetype<usize>(scratch4);
    store<u8>(b, <u8>(v >>> 24));
    store<u8>(b + 1, <u8>(v >>> 16));
    store<u8>(b + 2, <u8>(v >>> 8));
    store<u8>(b + 3, <u8>v);
    this.update(b, 4);
  }

  /** Finishes into 32 bytes; the hasher must be reset before reuse. */
  digest(): ArrayBuffer {
    const bits = this.total * 8;
    const b = changetype<usize>(this.block);
    store<u8>(b + <usize>this.used, 0x80);
    this.used++;
    if (this.used > 56) {
      memory.fill(b + <usize>this.used, 0, <usize>(64 - this.used));
      this.compress();
      this.used = 0;
    }
    memory.fill(b + <usize>this.used, 0, <usize>(56 - this.used));
    for (let i = 0; i < 8; i++) store<u8>(b + 56 + <usize>i, <u8>(bits >>> (<u64>(56 - 8 * i))));
    this.compress();
    const out = new ArrayBuffer(32);
    const o = changetype<usize>(out);
    for (let i = 0; i < 8; i++) {
      const v = this.h[i];
      store<u8>(o + <usize>(4 * i), <u8>(v >>> 24));
      store<u8>(o + <usize>(4 * i + 1), <u8>(v >>> 16));
      store<u8>(o + <usize>(4 * i + 2), <u8>(v >>> 8));
      store<u8>(o + <usize>(4 * i + 3), <u8>v);
    }
    return out;
  }

  private compress(): void {
    const b = changetype<usize>(this.block);
    const w = this.w;
    for (let i = 0; i < 16; i++) {
      const p = b + <usize>(4 * i);
      w[i] = (<u32>load<u8>(p) << 24) | (<u32>load<u8>(p + 1) << 16) | (<u32>load<u8>(p + 2) << 8) | <u32>load<u8>(p + 3);
    }
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15];
      const y = w[i - 2];
      const s0 = rotr<u32>(x, 7) ^ rotr<u32>(x, 18) ^ (x >>> 3);
      const s1 = rotr<u32>(y, 17) ^ rotr<u32>(y, 19) ^ (y >>> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    const h = this.h;
    let a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (let i = 0; i < 64; i++) {
      const S1 = rotr<u32>(e, 6) ^ rotr<u32>(e, 11) ^ rotr<u32>(e, 25);
      const ch = (e & f) ^ (~e & g);
      const t1 = hh + S1 + ch + K[i] + w[i];
      const S0 = rotr<u32>(a, 2) ^ rotr<u32>(a, 13) ^ rotr<u32>(a, 22);
      const mj = (a & bb) ^ (a & c) ^ (bb & c);
      const t2 = S0 + mj;
      hh = g; g = f; f = e; e = d + t1; d = c; c = bb; bb = a; a = t1 + t2;
    }
    h[0] += a; h[1] += bb; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
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
