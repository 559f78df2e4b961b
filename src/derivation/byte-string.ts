// Derivation strings are byte strings (a .drv may hold Latin-1 bytes). We keep them as JS strings
// and map each byte of invalid UTF-8 to a lone surrogate U+DC80..U+DCFF ("surrogateescape"), so
// valid text reads naturally and every file still prints back byte for byte.
import { isUtf8 } from "node:buffer";

const ESCAPED_BYTE = /[\udc80-\udcff]/u;
const ESCAPED_BYTE_G = /[\udc80-\udcff]/gu;

export function decodeBytes(buf: Uint8Array): string {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (isUtf8(b)) return b.toString("utf8");
  let out = "";
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      out += String.fromCharCode(c);
      i++;
      continue;
    }
    const len =
      c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (len > 0 && i + len <= b.length && isUtf8(b.subarray(i, i + len))) {
      out += b.toString("utf8", i, i + len);
      i += len;
    } else {
      out += String.fromCharCode(0xdc00 + c);
      i++;
    }
  }
  return out;
}

export function hasEscapedBytes(s: string): boolean {
  return ESCAPED_BYTE.test(s);
}

export function encodeBytes(s: string): Buffer {
  if (!ESCAPED_BYTE.test(s)) return Buffer.from(s, "utf8");
  const parts: Buffer[] = [];
  let last = 0;
  for (const m of s.matchAll(ESCAPED_BYTE_G)) {
    parts.push(Buffer.from(s.slice(last, m.index), "utf8"), Buffer.of(m[0].charCodeAt(0) - 0xdc00));
    last = m.index + m[0].length;
  }
  parts.push(Buffer.from(s.slice(last), "utf8"));
  return Buffer.concat(parts);
}

/** For display and JSON consumers: escaped bytes become U+FFFD, as a UTF-8 decoder would. */
export function toDisplayString(s: string): string {
  return ESCAPED_BYTE.test(s) ? s.replace(ESCAPED_BYTE_G, "\ufffd") : s;
}
