// A digest with its algorithm, and every rendering Nix prints or accepts.
import { createHash } from "node:crypto";
import { Nix32DecodeError, nix32Decode, nix32Encode, nix32EncodedLength } from "./nix32.ts";

export const HASH_ALGOS = ["md5", "sha1", "sha256", "sha512"] as const;
export type HashAlgo = (typeof HASH_ALGOS)[number];

export const HASH_SIZE: Record<HashAlgo, number> = { md5: 16, sha1: 20, sha256: 32, sha512: 64 };

export type HashFormat = "base16" | "nix32" | "base64" | "sri";

export class HashParseError extends Error {
  override name = "HashParseError";
}

export function isHashAlgo(s: string): s is HashAlgo {
  return (HASH_ALGOS as readonly string[]).includes(s);
}

export function parseHashAlgo(s: string): HashAlgo {
  if (!isHashAlgo(s)) {
    throw new HashParseError(`unknown hash algorithm '${s}': use one of ${HASH_ALGOS.join(", ")}`);
  }
  return s;
}

const BASE16_RE = /^[0-9a-fA-F]*$/;
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

export class Hash {
  readonly algo: HashAlgo;
  readonly digest: Buffer;

  constructor(algo: HashAlgo, digest: Uint8Array) {
    if (digest.length !== HASH_SIZE[algo]) {
      throw new HashParseError(
        `a ${algo} digest has ${HASH_SIZE[algo]} bytes, got ${digest.length}`,
      );
    }
    this.algo = algo;
    // Memory of its own, not a slice of Node's shared 8 KiB pool: a hash that lives long (the
    // derivation hash cache keeps one a goal) would keep its whole pool chunk alive with it,
    // ~2.4 kB a goal in a 10,000-goal build (BENCHMARKS.md, "Memory").
    const own = Buffer.allocUnsafeSlow(digest.length);
    own.set(digest);
    this.digest = own;
  }

  static of(algo: HashAlgo, data: string | Uint8Array): Hash {
    return new Hash(algo, createHash(algo).update(data).digest());
  }

  toBase16(): string {
    return this.digest.toString("hex");
  }

  toNix32(): string {
    return nix32Encode(this.digest);
  }

  toBase64(): string {
    return this.digest.toString("base64");
  }

  toSri(): string {
    return `${this.algo}-${this.toBase64()}`;
  }

  /** Render in `format`; non-SRI formats get an `algo:` prefix unless `withAlgo` is false. */
  format(format: HashFormat, withAlgo = true): string {
    if (format === "sri") return this.toSri();
    const body =
      format === "base16" ? this.toBase16() : format === "nix32" ? this.toNix32() : this.toBase64();
    return withAlgo ? `${this.algo}:${body}` : body;
  }

  /** Nix's default printed form, `sha256:<nix32>`. */
  toString(): string {
    return this.format("nix32");
  }

  equals(other: Hash): boolean {
    return this.algo === other.algo && this.digest.equals(other.digest);
  }

  /**
   * Parse any rendering Nix accepts: `algo:<base16|nix32|base64>`, SRI `algo-<base64>`, or a
   * bare digest when `algo` is known from context. The encoding of an unprefixed digest is chosen
   * by its length, as Nix does.
   */
  static parse(text: string, algo?: HashAlgo): Hash {
    const colon = text.indexOf(":");
    if (colon >= 0) {
      const prefix = text.slice(0, colon);
      const found = parseHashAlgo(prefix);
      checkExpected(text, found, algo);
      return Hash.parseDigest(text.slice(colon + 1), found, false, text);
    }
    const dash = text.indexOf("-");
    if (dash >= 0 && isHashAlgo(text.slice(0, dash))) {
      const found = text.slice(0, dash) as HashAlgo;
      checkExpected(text, found, algo);
      return Hash.parseDigest(text.slice(dash + 1), found, true, text);
    }
    if (!algo) {
      throw new HashParseError(
        `hash '${text}' does not say its algorithm: write it as 'sha256:…' or in SRI form 'sha256-…'`,
      );
    }
    return Hash.parseDigest(text, algo, false, text);
  }

  /** Parse a digest of a known algorithm whose encoding is told by its length (or SRI = base64). */
  static parseDigest(rest: string, algo: HashAlgo, sri: boolean, whole = rest): Hash {
    const size = HASH_SIZE[algo];
    const base64Len = 4 * Math.ceil(size / 3);
    if (!sri && rest.length === size * 2) {
      if (!BASE16_RE.test(rest)) throw new HashParseError(`invalid base-16 hash '${whole}'`);
      return new Hash(algo, Buffer.from(rest, "hex"));
    }
    if (!sri && rest.length === nix32EncodedLength(size)) {
      try {
        return new Hash(algo, nix32Decode(rest));
      } catch (e) {
        if (e instanceof Nix32DecodeError) {
          throw new HashParseError(`invalid nix32 hash '${whole}': ${e.message}`);
        }
        throw e;
      }
    }
    if (rest.length === base64Len) {
      const bytes = Buffer.from(rest, "base64");
      if (!BASE64_RE.test(rest) || bytes.length !== size || bytes.toString("base64") !== rest) {
        throw new HashParseError(`invalid base-64 hash '${whole}'`);
      }
      return new Hash(algo, bytes);
    }
    throw new HashParseError(
      sri
        ? `invalid SRI hash '${whole}': a ${algo} digest is ${base64Len} base-64 characters`
        : `hash '${whole}' has wrong length for hash type '${algo}' (expected ${size * 2} base-16, ${nix32EncodedLength(size)} nix32 or ${base64Len} base-64 characters)`,
    );
  }
}

function checkExpected(text: string, found: HashAlgo, expected: HashAlgo | undefined): void {
  if (expected && expected !== found) {
    throw new HashParseError(`hash '${text}' should have type '${expected}', not '${found}'`);
  }
}
