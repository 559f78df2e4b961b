// Nix's base-32 ("nix32"): its own alphabet (no e, o, t, u) and a bit order where the first
// printed character holds the most significant 5-bit group of the little-endian bit string.

export const NIX32_ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz";

const DIGIT_OF = new Int8Array(128).fill(-1);
for (let i = 0; i < NIX32_ALPHABET.length; i++) DIGIT_OF[NIX32_ALPHABET.charCodeAt(i)] = i;

export class Nix32DecodeError extends Error {
  override name = "Nix32DecodeError";
}

/** Characters needed to encode `n` bytes. */
export function nix32EncodedLength(n: number): number {
  return n === 0 ? 0 : Math.floor((8 * n - 1) / 5) + 1;
}

/** Bytes encoded by `len` characters, or -1 if no byte count encodes to that length. */
export function nix32DecodedLength(len: number): number {
  const n = Math.floor((len * 5) / 8);
  return nix32EncodedLength(n) === len ? n : -1;
}

export function nix32Encode(bytes: Uint8Array): string {
  const len = nix32EncodedLength(bytes.length);
  let out = "";
  for (let n = len - 1; n >= 0; n--) {
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    const lo = bytes[i]! >> j;
    const hi = i + 1 < bytes.length ? bytes[i + 1]! << (8 - j) : 0;
    out += NIX32_ALPHABET[(lo | hi) & 0x1f];
  }
  return out;
}

/** True when `s` uses only nix32 characters (no length or carry check). */
export function isNix32Chars(s: string): boolean {
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c >= 128 || DIGIT_OF[c]! < 0) return false;
  }
  return true;
}

export function nix32Decode(s: string): Buffer {
  const size = nix32DecodedLength(s.length);
  if (size < 0) {
    throw new Nix32DecodeError(
      `'${s}' is not valid nix32: length ${s.length} encodes no byte count`,
    );
  }
  const out = Buffer.alloc(size);
  for (let n = 0; n < s.length; n++) {
    const c = s.charCodeAt(s.length - n - 1);
    const digit = c < 128 ? DIGIT_OF[c]! : -1;
    if (digit < 0) {
      throw new Nix32DecodeError(
        `'${s}' is not valid nix32: character '${s[s.length - n - 1]}' at position ${s.length - n - 1} is not in the alphabet ${NIX32_ALPHABET}`,
      );
    }
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    out[i]! |= (digit << j) & 0xff;
    const carry = digit >> (8 - j);
    if (i + 1 < size) out[i + 1]! |= carry;
    else if (carry !== 0) {
      throw new Nix32DecodeError(
        `'${s}' is not valid nix32: its first character sets bits past the end`,
      );
    }
  }
  return out;
}
