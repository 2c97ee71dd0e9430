// Standard base64 (RFC 4648 §4, with padding) of bytes in linear memory. Pure.
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const TABLE = String.UTF8.encode(ALPHABET);

/** The base64 text of `len` bytes at `ptr`, as UTF-8 (ASCII) bytes. */
export function base64Encode(ptr: usize, len: usize): ArrayBuffer {
  const out = new ArrayBuffer(<i32>(((len + 2) / 3) * 4));
  const o = changetype<usize>(out);
  const t = changetype<usize>(TABLE);
  let i: usize = 0;
  let j: usize = 0;
  while (i + 3 <= len) {
    const v = (<u32>load<u8>(ptr + i) << 16) | (<u32>load<u8>(ptr + i + 1) << 8) | <u32>load<u8>(ptr + i + 2);
    store<u8>(o + j, load<u8>(t + <usize>(v >> 18)));
    store<u8>(o + j + 1, load<u8>(t + <usize>((v >> 12) & 63)));
    store<u8>(o + j + 2, load<u8>(t + <usize>((v >> 6) & 63)));
    store<u8>(o + j + 3, load<u8>(t + <usize>(v & 63)));
    i += 3;
    j += 4;
  }
  const rest = len - i;
  if (rest > 0) {
    let v = <u32>load<u8>(ptr + i) << 16;
    if (rest == 2) v |= <u32>load<u8>(ptr + i + 1) << 8;
    store<u8>(o + j, load<u8>(t + <usize>(v >> 18)));
    store<u8>(o + j + 1, load<u8>(t + <usize>((v >> 12) & 63)));
    store<u8>(o + j + 2, rest == 2 ? load<u8>(t + <usize>((v >> 6) & 63)) : 0x3d);
    store<u8>(o + j + 3, 0x3d);
  }
  return out;
}
