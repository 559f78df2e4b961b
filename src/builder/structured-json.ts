// JSON as Nix 2.8 handles structured attributes, i.e. as nlohmann::json (3.11, the version Nix
// 2.8 is built with) parses and prints it: `json::parse` (strict RFC 8259, integers kept as exact
// 64-bit integers, a float that overflows is an error) and `json::dump()` (compact, object keys in
// byte order, floats in Grisu2's short form such as `1.0`, `1e-05`, `1e+21`).

import { compareBytes } from "../derivation/derivation.ts";

/**
 * A JSON value. Integers are `bigint` (nlohmann's int64/uint64), floats are `number` (its double):
 * `1` and `1.0` are different values that print differently. Objects are Maps (any key, even
 * `__proto__`); their order does not matter, printing sorts the keys.
 */
export type JsonValue = null | boolean | string | bigint | number | JsonValue[] | JsonObject;
export type JsonObject = Map<string, JsonValue>;

/** Text that is not JSON: says where (line and column, from 1) and what is wrong. */
export class JsonParseError extends Error {
  override name = "JsonParseError";
  readonly line: number;
  readonly column: number;

  constructor(detail: string, line: number, column: number) {
    super(`parse error at line ${line}, column ${column}: ${detail}`);
    this.line = line;
    this.column = column;
  }
}

/** A value used as a type it is not (nlohmann's type_error), e.g. a string where a number must be. */
export class JsonTypeError extends Error {
  override name = "JsonTypeError";
}

/** nlohmann's type_name(). */
export function typeName(v: JsonValue): string {
  if (v === null) return "null";
  if (typeof v === "boolean") return "boolean";
  if (typeof v === "string") return "string";
  if (typeof v === "bigint" || typeof v === "number") return "number";
  return Array.isArray(v) ? "array" : "object";
}

export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return v instanceof Map;
}

/** `obj.find(key)` of nlohmann: nothing unless `obj` is an object that has the key. */
export function findKey(obj: JsonValue | undefined, key: string): JsonValue | undefined {
  return isJsonObject(obj) ? obj.get(key) : undefined;
}

/** An object's entries in nlohmann's order (std::map: keys compared as bytes). */
export function sortedEntries(obj: JsonObject): [string, JsonValue][] {
  return [...obj].sort((a, b) => compareBytes(a[0], b[0]));
}

/**
 * What a C++ range-for over a nlohmann value visits: an array's elements, an object's values (in
 * key order), nothing for null, and any other value itself, once.
 */
export function jsonElements(v: JsonValue): JsonValue[] {
  if (v === null) return [];
  if (Array.isArray(v)) return v;
  if (isJsonObject(v)) return sortedEntries(v).map((e) => e[1]);
  return [v];
}

// ---- numbers converted as nlohmann's get<T>() does (static_cast, as gcc on x86-64 does it) ----

function numberOf(v: JsonValue, what: string): bigint | number {
  if (typeof v === "bigint" || typeof v === "number") return v;
  throw new JsonTypeError(
    `[json.exception.type_error.302] type must be ${what}, but is ${typeName(v)}`,
  );
}

/** get<uint64_t>(): integers wrap modulo 2^64; floats truncate (cvttsd2si with gcc's 2^63 split). */
export function toUint64(v: JsonValue): bigint {
  const n = numberOf(v, "number");
  if (typeof n === "bigint") return BigInt.asUintN(64, n);
  const two63 = 2 ** 63;
  const signed = (x: number) =>
    // cvttsd2si: out of range gives the "integer indefinite" value 0x8000000000000000.
    x >= -two63 && x < two63 ? BigInt(Math.trunc(x)) : -(2n ** 63n);
  return n < two63
    ? BigInt.asUintN(64, signed(n))
    : BigInt.asUintN(64, signed(n - two63)) ^ (2n ** 63n);
}

/** get<int>(): integers wrap modulo 2^32; floats truncate, out of range giving INT_MIN. */
export function toInt32(v: JsonValue): number {
  const n = numberOf(v, "number");
  if (typeof n === "bigint") return Number(BigInt.asIntN(32, n));
  const t = Math.trunc(n);
  return t >= -(2 ** 31) && t < 2 ** 31 ? t + 0 : -(2 ** 31);
}

/** get<float>(): the nearest single-precision value. */
export function toFloat32(v: JsonValue): number {
  const n = numberOf(v, "number");
  return Math.fround(typeof n === "bigint" ? Number(n) : n);
}

// ---- parsing ----

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;

type Open =
  | { kind: "array"; value: JsonValue[] }
  | { kind: "object"; value: JsonObject; key: string };

class JsonReader {
  pos = 0;
  constructor(readonly text: string) {}

  fail(detail: string, at = this.pos): never {
    const before = this.text.slice(0, at);
    const line = before.split("\n").length;
    throw new JsonParseError(detail, line, at - before.lastIndexOf("\n"));
  }

  ws(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      this.pos++;
    }
  }

  describeHere(): string {
    if (this.pos >= this.text.length) return "end of input";
    const cp = this.text.codePointAt(this.pos)!;
    return cp < 0x20 || cp === 0x7f ? `U+${hex4(cp)}` : `'${String.fromCodePoint(cp)}'`;
  }

  expect(ch: string, context: string): void {
    this.ws();
    if (this.text[this.pos] !== ch)
      this.fail(
        `syntax error while parsing ${context} - unexpected ${this.describeHere()}; expected '${ch}'`,
      );
    this.pos++;
  }

  literal(word: string, value: JsonValue): JsonValue {
    if (!this.text.startsWith(word, this.pos))
      this.fail(`syntax error while parsing value - invalid literal`);
    this.pos += word.length;
    return value;
  }

  number(): JsonValue {
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.text);
    if (!m) this.fail("syntax error while parsing value - invalid number");
    const token = m[0];
    const start = this.pos;
    this.pos += token.length;
    if (m[1] === undefined && m[2] === undefined) {
      // As nlohmann: an integer when it fits int64 (negative) or uint64, a float otherwise.
      const n = BigInt(token);
      if (token.startsWith("-") ? n >= INT64_MIN : n <= UINT64_MAX) return n;
    }
    const x = Number(token);
    if (!Number.isFinite(x)) this.fail(`number overflow parsing '${token}'`, start);
    return x;
  }

  string(context: string): string {
    this.ws();
    if (this.text[this.pos] !== '"')
      this.fail(
        `syntax error while parsing ${context} - unexpected ${this.describeHere()}; expected string literal`,
      );
    const t = this.text;
    let i = this.pos + 1;
    let out = "";
    let run = i;
    for (;;) {
      if (i >= t.length) this.fail("syntax error - invalid string: missing closing quote", i);
      const c = t.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20)
        this.fail(
          `syntax error - invalid string: control character U+${hex4(c)} must be escaped`,
          i,
        );
      if (c >= 0xd800 && c <= 0xdfff) {
        // A surrogate pair is one code point of valid UTF-8; a lone one stands for bytes of
        // invalid UTF-8 in the derivation (see byte-string.ts).
        const next = t.charCodeAt(i + 1);
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          i += 2;
          continue;
        }
        this.fail("syntax error - invalid string: ill-formed UTF-8 byte", i);
      }
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += t.slice(run, i);
      const e = t[i + 1];
      const simple: Record<string, string> = {
        '"': '"',
        "\\": "\\",
        "/": "/",
        b: "\b",
        f: "\f",
        n: "\n",
        r: "\r",
        t: "\t",
      };
      if (e !== undefined && e in simple) {
        out += simple[e];
        i += 2;
      } else if (e === "u") {
        const u1 = this.hex(i + 2);
        i += 6;
        if (u1 >= 0xd800 && u1 <= 0xdbff) {
          const u2 = t.startsWith("\\u", i) ? this.hex(i + 2) : -1;
          if (u2 < 0xdc00 || u2 > 0xdfff)
            this.fail(
              "syntax error - invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF",
              i,
            );
          out += String.fromCharCode(u1, u2);
          i += 6;
        } else if (u1 >= 0xdc00 && u1 <= 0xdfff) {
          this.fail(
            "syntax error - invalid string: surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF",
            i,
          );
        } else out += String.fromCharCode(u1);
      } else this.fail("syntax error - invalid string: forbidden character after backslash", i + 1);
      run = i;
    }
    out += t.slice(run, i);
    this.pos = i + 1;
    return out;
  }

  hex(at: number): number {
    const h = this.text.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h))
      this.fail("syntax error - invalid string: '\\u' must be followed by 4 hex digits", at);
    return Number.parseInt(h, 16);
  }

  /** One complete JSON text; iterative, so any depth of nesting parses. */
  document(): JsonValue {
    // nlohmann skips a UTF-8 byte order mark at the very start.
    if (this.text.charCodeAt(0) === 0xfeff) this.pos = 1;
    const stack: Open[] = [];
    for (;;) {
      // A value starts here.
      this.ws();
      let value: JsonValue;
      const c = this.text[this.pos];
      if (c === "{") {
        this.pos++;
        this.ws();
        if (this.text[this.pos] === "}") {
          this.pos++;
          value = new Map();
        } else {
          const key = this.string("object key");
          this.expect(":", "object separator");
          stack.push({ kind: "object", value: new Map(), key });
          continue;
        }
      } else if (c === "[") {
        this.pos++;
        this.ws();
        if (this.text[this.pos] === "]") {
          this.pos++;
          value = [];
        } else {
          stack.push({ kind: "array", value: [] });
          continue;
        }
      } else if (c === '"') value = this.string("value");
      else if (c === "t") value = this.literal("true", true);
      else if (c === "f") value = this.literal("false", false);
      else if (c === "n") value = this.literal("null", null);
      else if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) value = this.number();
      else
        this.fail(
          `syntax error while parsing value - unexpected ${this.describeHere()}; expected value`,
        );

      // The value is complete: put it into its container, closing containers that end here.
      for (;;) {
        const top = stack.at(-1);
        if (!top) {
          this.ws();
          if (this.pos < this.text.length)
            this.fail(
              `syntax error while parsing value - unexpected ${this.describeHere()}; expected end of input`,
            );
          return value;
        }
        this.ws();
        const next = this.text[this.pos];
        if (top.kind === "array") {
          top.value.push(value);
          if (next === ",") {
            this.pos++;
            break;
          }
          if (next !== "]")
            this.fail(
              `syntax error while parsing array - unexpected ${this.describeHere()}; expected ']'`,
            );
        } else {
          // A repeated key keeps its last value, as nlohmann does.
          top.value.set(top.key, value);
          if (next === ",") {
            this.pos++;
            top.key = this.string("object key");
            this.expect(":", "object separator");
            break;
          }
          if (next !== "}")
            this.fail(
              `syntax error while parsing object - unexpected ${this.describeHere()}; expected '}'`,
            );
        }
        this.pos++;
        value = top.value;
        stack.pop();
      }
    }
  }
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, "0");
}

/** nlohmann's json::parse: throws JsonParseError for anything it rejects. */
export function parseJson(text: string): JsonValue {
  return new JsonReader(text).document();
}

// ---- printing ----

const ESCAPE = /[\x00-\x1f"\\]/g;
const LONE_SURROGATE = /\p{Cs}/u;

function quote(s: string): string {
  if (LONE_SURROGATE.test(s))
    throw new JsonTypeError("[json.exception.type_error.316] invalid UTF-8 byte in string");
  const escaped = s.replace(ESCAPE, (c) => {
    switch (c) {
      case "\b":
        return "\\b";
      case "\t":
        return "\\t";
      case "\n":
        return "\\n";
      case "\f":
        return "\\f";
      case "\r":
        return "\\r";
      case '"':
        return '\\"';
      case "\\":
        return "\\\\";
      default:
        return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
    }
  });
  return `"${escaped}"`;
}

function scalar(v: null | boolean | string | bigint | number): string {
  if (v === null) return "null";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "string") return quote(v);
  if (typeof v === "bigint") return v.toString();
  return formatFloat(v);
}

/** nlohmann's json::dump() with no indent: compact, keys sorted by bytes. Iterative, any depth. */
export function dumpJson(root: JsonValue): string {
  const out: string[] = [];
  const stack: { items: [string | undefined, JsonValue][]; next: number; close: string }[] = [];
  let value: JsonValue = root;
  for (;;) {
    if (Array.isArray(value)) {
      out.push("[");
      stack.push({ items: value.map((v) => [undefined, v]), next: 0, close: "]" });
    } else if (isJsonObject(value)) {
      out.push("{");
      stack.push({ items: sortedEntries(value), next: 0, close: "}" });
    } else out.push(scalar(value));
    // Find the next value to print, closing finished containers.
    for (;;) {
      const top = stack.at(-1);
      if (!top) return out.join("");
      if (top.next < top.items.length) {
        if (top.next > 0) out.push(",");
        const [key, v] = top.items[top.next++]!;
        if (key !== undefined) out.push(`${quote(key)}:`);
        value = v;
        break;
      }
      out.push(top.close);
      stack.pop();
    }
  }
}

// ---- floats: nlohmann's to_chars (Grisu2, Loitsch 2010), on 64-bit integers as BigInt ----

const MASK64 = (1n << 64n) - 1n;

interface DiyFp {
  f: bigint;
  e: number;
}

function diyMul(x: DiyFp, y: DiyFp): DiyFp {
  const m32 = 0xffffffffn;
  const uLo = x.f & m32;
  const uHi = x.f >> 32n;
  const vLo = y.f & m32;
  const vHi = y.f >> 32n;
  const p0 = uLo * vLo;
  const p1 = uLo * vHi;
  const p2 = uHi * vLo;
  const p3 = uHi * vHi;
  let q = (p0 >> 32n) + (p1 & m32) + (p2 & m32);
  q += 1n << 31n; // round, ties up
  const h = p3 + (p2 >> 32n) + (p1 >> 32n) + (q >> 32n);
  return { f: h & MASK64, e: x.e + y.e + 64 };
}

function normalize(x: DiyFp): DiyFp {
  let { f, e } = x;
  while (f >> 63n === 0n) {
    f <<= 1n;
    e--;
  }
  return { f, e };
}

function normalizeTo(x: DiyFp, e: number): DiyFp {
  return { f: (x.f << BigInt(x.e - e)) & MASK64, e };
}

/** The double `value` (> 0, finite) and the boundaries of the numbers that round to it. */
function boundaries(value: number): { w: DiyFp; minus: DiyFp; plus: DiyFp } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  const bits = view.getBigUint64(0);
  const hidden = 1n << 52n;
  const E = bits >> 52n;
  const F = bits & (hidden - 1n);
  const v: DiyFp = E === 0n ? { f: F, e: -1074 } : { f: F + hidden, e: Number(E) - 1075 };
  const lowerBoundaryIsCloser = F === 0n && E > 1n;
  const mPlus = { f: 2n * v.f + 1n, e: v.e - 1 };
  const mMinus = lowerBoundaryIsCloser
    ? { f: 4n * v.f - 1n, e: v.e - 2 }
    : { f: 2n * v.f - 1n, e: v.e - 1 };
  const plus = normalize(mPlus);
  return { w: normalize(v), minus: normalizeTo(mMinus, plus.e), plus };
}

// c = f * 2^e ~= 10^k, for k = -300, -292, …, 324.
// biome-ignore format: a table
const CACHED_POWERS: [bigint, number, number][] = [
  [0xab70fe17c79ac6can, -1060, -300], [0xff77b1fcbebcdc4fn, -1034, -292],
  [0xbe5691ef416bd60cn, -1007, -284], [0x8dd01fad907ffc3cn, -980, -276],
  [0xd3515c2831559a83n, -954, -268], [0x9d71ac8fada6c9b5n, -927, -260],
  [0xea9c227723ee8bcbn, -901, -252], [0xaecc49914078536dn, -874, -244],
  [0x823c12795db6ce57n, -847, -236], [0xc21094364dfb5637n, -821, -228],
  [0x9096ea6f3848984fn, -794, -220], [0xd77485cb25823ac7n, -768, -212],
  [0xa086cfcd97bf97f4n, -741, -204], [0xef340a98172aace5n, -715, -196],
  [0xb23867fb2a35b28en, -688, -188], [0x84c8d4dfd2c63f3bn, -661, -180],
  [0xc5dd44271ad3cdban, -635, -172], [0x936b9fcebb25c996n, -608, -164],
  [0xdbac6c247d62a584n, -582, -156], [0xa3ab66580d5fdaf6n, -555, -148],
  [0xf3e2f893dec3f126n, -529, -140], [0xb5b5ada8aaff80b8n, -502, -132],
  [0x87625f056c7c4a8bn, -475, -124], [0xc9bcff6034c13053n, -449, -116],
  [0x964e858c91ba2655n, -422, -108], [0xdff9772470297ebdn, -396, -100],
  [0xa6dfbd9fb8e5b88fn, -369, -92], [0xf8a95fcf88747d94n, -343, -84],
  [0xb94470938fa89bcfn, -316, -76], [0x8a08f0f8bf0f156bn, -289, -68],
  [0xcdb02555653131b6n, -263, -60], [0x993fe2c6d07b7facn, -236, -52],
  [0xe45c10c42a2b3b06n, -210, -44], [0xaa242499697392d3n, -183, -36],
  [0xfd87b5f28300ca0en, -157, -28], [0xbce5086492111aebn, -130, -20],
  [0x8cbccc096f5088ccn, -103, -12], [0xd1b71758e219652cn, -77, -4],
  [0x9c40000000000000n, -50, 4], [0xe8d4a51000000000n, -24, 12],
  [0xad78ebc5ac620000n, 3, 20], [0x813f3978f8940984n, 30, 28],
  [0xc097ce7bc90715b3n, 56, 36], [0x8f7e32ce7bea5c70n, 83, 44],
  [0xd5d238a4abe98068n, 109, 52], [0x9f4f2726179a2245n, 136, 60],
  [0xed63a231d4c4fb27n, 162, 68], [0xb0de65388cc8ada8n, 189, 76],
  [0x83c7088e1aab65dbn, 216, 84], [0xc45d1df942711d9an, 242, 92],
  [0x924d692ca61be758n, 269, 100], [0xda01ee641a708dean, 295, 108],
  [0xa26da3999aef774an, 322, 116], [0xf209787bb47d6b85n, 348, 124],
  [0xb454e4a179dd1877n, 375, 132], [0x865b86925b9bc5c2n, 402, 140],
  [0xc83553c5c8965d3dn, 428, 148], [0x952ab45cfa97a0b3n, 455, 156],
  [0xde469fbd99a05fe3n, 481, 164], [0xa59bc234db398c25n, 508, 172],
  [0xf6c69a72a3989f5cn, 534, 180], [0xb7dcbf5354e9becen, 561, 188],
  [0x88fcf317f22241e2n, 588, 196], [0xcc20ce9bd35c78a5n, 614, 204],
  [0x98165af37b2153dfn, 641, 212], [0xe2a0b5dc971f303an, 667, 220],
  [0xa8d9d1535ce3b396n, 694, 228], [0xfb9b7cd9a4a7443cn, 720, 236],
  [0xbb764c4ca7a44410n, 747, 244], [0x8bab8eefb6409c1an, 774, 252],
  [0xd01fef10a657842cn, 800, 260], [0x9b10a4e5e9913129n, 827, 268],
  [0xe7109bfba19c0c9dn, 853, 276], [0xac2820d9623bf429n, 880, 284],
  [0x80444b5e7aa7cf85n, 907, 292], [0xbf21e44003acdd2dn, 933, 300],
  [0x8e679c2f5e44ff8fn, 960, 308], [0xd433179d9c8cb841n, 986, 316],
  [0x9e19db92b4e31ba9n, 1013, 324],
];

const ALPHA = -60;

function cachedPower(e: number): { f: bigint; e: number; k: number } {
  const f = ALPHA - e - 1;
  const k = Math.trunc((f * 78913) / (1 << 18)) + (f > 0 ? 1 : 0);
  const index = Math.trunc((300 + k + 7) / 8);
  const [cf, ce, ck] = CACHED_POWERS[index]!;
  return { f: cf, e: ce, k: ck };
}

function largestPow10(n: number): [number, number] {
  let digits = 1;
  let pow10 = 1;
  while (digits < 10 && n >= pow10 * 10) {
    pow10 *= 10;
    digits++;
  }
  return [digits, pow10];
}

function grisu2Round(buf: number[], dist: bigint, delta: bigint, rest: bigint, tenK: bigint): void {
  while (
    rest < dist &&
    delta - rest >= tenK &&
    (((rest + tenK) & MASK64) < dist || dist - rest > ((rest + tenK - dist) & MASK64))
  ) {
    buf[buf.length - 1]!--;
    rest = (rest + tenK) & MASK64;
  }
}

/** Shortest-ish digits and exponent: value = digits * 10^exponent. */
function grisu2(value: number): { digits: number[]; exponent: number } {
  const { w: v, minus: mMinus, plus: mPlus } = boundaries(value);
  const cached = cachedPower(mPlus.e);
  const c = { f: cached.f, e: cached.e };
  const w = diyMul(v, c);
  const wMinus = diyMul(mMinus, c);
  const wPlus = diyMul(mPlus, c);
  const Mminus = { f: wMinus.f + 1n, e: wMinus.e };
  const Mplus = { f: wPlus.f - 1n, e: wPlus.e };
  let exponent = -cached.k;

  let delta = Mplus.f - Mminus.f;
  let dist = Mplus.f - w.f;
  const shift = BigInt(-Mplus.e);
  const one = 1n << shift;
  let p1 = Number(Mplus.f >> shift);
  let p2 = Mplus.f & (one - 1n);
  const digits: number[] = [];
  let [n, pow10] = largestPow10(p1);
  while (n > 0) {
    digits.push(Math.floor(p1 / pow10));
    p1 %= pow10;
    n--;
    const rest = (BigInt(p1) << shift) + p2;
    if (rest <= delta) {
      exponent += n;
      grisu2Round(digits, dist, delta, rest, BigInt(pow10) << shift);
      return { digits, exponent };
    }
    pow10 = Math.floor(pow10 / 10);
  }
  let m = 0;
  for (;;) {
    p2 = (p2 * 10n) & MASK64;
    digits.push(Number(p2 >> shift));
    p2 &= one - 1n;
    m++;
    delta = (delta * 10n) & MASK64;
    dist = (dist * 10n) & MASK64;
    if (p2 <= delta) break;
  }
  exponent -= m;
  grisu2Round(digits, dist, delta, p2, one);
  return { digits, exponent };
}

/** A double as nlohmann prints it: `1.0`, `0.1`, `1e-05`, `1.2345678901234568e+20`, `null`. */
export function formatFloat(x: number): string {
  if (!Number.isFinite(x)) return "null";
  const sign = x < 0 || Object.is(x, -0) ? "-" : "";
  const a = Math.abs(x);
  if (a === 0) return `${sign}0.0`;
  const { digits, exponent } = grisu2(a);
  const d = digits.join("");
  const k = d.length;
  const n = k + exponent;
  const maxExp = 15;
  const minExp = -4;
  let body: string;
  if (k <= n && n <= maxExp) body = `${d}${"0".repeat(n - k)}.0`;
  else if (0 < n && n <= maxExp) body = `${d.slice(0, n)}.${d.slice(n)}`;
  else if (minExp < n && n <= 0) body = `0.${"0".repeat(-n)}${d}`;
  else {
    const e = n - 1;
    const mantissa = k === 1 ? d : `${d[0]}.${d.slice(1)}`;
    body = `${mantissa}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  }
  return sign + body;
}
