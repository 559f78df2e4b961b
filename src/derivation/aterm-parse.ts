// Parse a .drv file (ATerm `Derive(...)`) the way Nix 2.8 does, but stricter where Nix would
// silently lose data (duplicate keys, trailing bytes) and with errors that give the byte offset.
import { Hash, HashParseError, isHashAlgo } from "../hash/hash.ts";
import type { FileIngestionMethod } from "../store-path/make-store-path.ts";
import { type StoreDir, StorePathError } from "../store-path/store-path.ts";
import { decodeBytes } from "./byte-string.ts";
import type { Derivation, DerivationOutput } from "./derivation.ts";
import { AtermParseError, DerivationError } from "./errors.ts";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

export interface ParseOptions {
  /** The derivation's name (file name without hash part and `.drv`). */
  name: string;
  /** Paths inside must lie in this store directory. */
  storeDir: StoreDir;
  /** Shown in error messages, e.g. the file path. */
  source?: string;
}

class AtermReader {
  pos = 0;
  constructor(
    readonly buf: Buffer,
    readonly source: string | undefined,
  ) {}

  fail(expected: string, at = this.pos): never {
    const found =
      at >= this.buf.length
        ? "end of file"
        : JSON.stringify(this.buf.toString("latin1", at, Math.min(at + 16, this.buf.length)));
    throw new AtermParseError(expected, at, found, this.source);
  }

  expect(token: string): void {
    for (let k = 0; k < token.length; k++) {
      if (this.buf[this.pos + k] !== token.charCodeAt(k)) this.fail(`'${token}'`, this.pos);
    }
    this.pos += token.length;
  }

  /** Consume `c` if it is next. */
  eat(c: string): boolean {
    if (this.buf[this.pos] === c.charCodeAt(0)) {
      this.pos++;
      return true;
    }
    return false;
  }

  string(): string {
    if (this.buf[this.pos] !== QUOTE) this.fail("a string ('\"')");
    const start = ++this.pos;
    const close = this.buf.indexOf(QUOTE, start);
    const slash = this.buf.indexOf(BACKSLASH, start);
    if (close >= 0 && (slash < 0 || slash > close)) {
      this.pos = close + 1;
      return decodeBytes(this.buf.subarray(start, close));
    }
    const bytes: number[] = [];
    for (;;) {
      if (this.pos >= this.buf.length) this.fail("the end of a string ('\"')");
      const c = this.buf[this.pos++]!;
      if (c === QUOTE) break;
      if (c !== BACKSLASH) {
        bytes.push(c);
        continue;
      }
      if (this.pos >= this.buf.length) this.fail("an escaped character after '\\'");
      const e = this.buf[this.pos++]!;
      bytes.push(e === 0x6e ? 0x0a : e === 0x72 ? 0x0d : e === 0x74 ? 0x09 : e);
    }
    return decodeBytes(Buffer.from(bytes));
  }

  path(storeDir: StoreDir): string {
    const at = this.pos;
    const s = this.string();
    try {
      storeDir.parsePath(s);
    } catch (e) {
      if (e instanceof StorePathError)
        this.fail(`a store path in ${storeDir.path} (${e.message})`, at);
      throw e;
    }
    return s;
  }

  /** `[x,y,…]` with `item` reading each element. */
  list<T>(item: () => T): T[] {
    this.expect("[");
    const out: T[] = [];
    if (this.eat("]")) return out;
    do out.push(item());
    while (this.eat(","));
    this.expect("]");
    return out;
  }
}

function parseOutput(r: AtermReader, storeDir: StoreDir): [string, DerivationOutput] {
  r.expect("(");
  const name = r.string();
  r.expect(",");
  const pathAt = r.pos;
  const path = r.string();
  r.expect(",");
  const algoAt = r.pos;
  let algo = r.string();
  r.expect(",");
  const hashAt = r.pos;
  const hash = r.string();
  r.expect(")");
  const checkPath = () => {
    try {
      storeDir.parsePath(path);
    } catch (e) {
      if (e instanceof StorePathError)
        r.fail(`an output path in ${storeDir.path} (${e.message})`, pathAt);
      throw e;
    }
  };
  if (algo === "") {
    if (hash !== "") r.fail("an empty hash for an output without hash algorithm", hashAt);
    if (path === "") return [name, { type: "deferred" }];
    checkPath();
    return [name, { type: "inputAddressed", path }];
  }
  let method: FileIngestionMethod = "flat";
  if (algo.startsWith("r:")) {
    method = "nar";
    algo = algo.slice(2);
  }
  if (algo.startsWith("text:")) {
    throw new DerivationError(
      `${r.source ?? "derivation"}: output '${name}' uses the 'text' hashing method (dynamic derivations), which Nix 2.8 does not support`,
    );
  }
  if (!isHashAlgo(algo))
    r.fail("a hash algorithm (md5, sha1, sha256, sha512, optionally 'r:')", algoAt);
  if (hash === "") {
    throw new DerivationError(
      `${r.source ?? "derivation"}: output '${name}' is content-addressed with a floating path (experimental feature 'ca-derivations'), which nixstate, like Nix 2.8 by default, does not build`,
    );
  }
  if (hash === "impure") {
    throw new DerivationError(
      `${r.source ?? "derivation"}: output '${name}' is impure (experimental feature 'impure-derivations'), which nixstate does not build`,
    );
  }
  checkPath();
  try {
    return [name, { type: "fixed", path, method, hash: Hash.parseDigest(hash, algo, false) }];
  } catch (e) {
    if (e instanceof HashParseError) r.fail(`a ${algo} digest (${e.message})`, hashAt);
    throw e;
  }
}

function intoMap<V>(r: AtermReader, what: string, entries: [string, V, number][]): Map<string, V> {
  const m = new Map<string, V>();
  for (const [k, v, at] of entries) {
    if (m.has(k)) r.fail(`no duplicate ${what} (${JSON.stringify(k)} appears twice)`, at);
    m.set(k, v);
  }
  return m;
}

export function parseDerivation(bytes: Uint8Array, opts: ParseOptions): Derivation {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
  const r = new AtermReader(buf, opts.source);
  const { storeDir } = opts;
  if (buf.subarray(0, 15).toString("latin1") === "DrvWithVersion(") {
    r.pos = 15;
    const version = r.string();
    throw new DerivationError(
      version === "xp-dyn-drv"
        ? `${opts.source ?? "derivation"} uses dynamic derivations ('xp-dyn-drv'), which are newer than Nix 2.8 and not supported`
        : `${opts.source ?? "derivation"} has unknown derivation version '${version}'`,
    );
  }
  r.expect("Derive(");

  const outputs = intoMap(
    r,
    "output name",
    r.list(() => {
      const at = r.pos;
      const [n, o] = parseOutput(r, storeDir);
      return [n, o, at + 2] as [string, DerivationOutput, number];
    }),
  );
  r.expect(",");
  const inputDrvs = intoMap(
    r,
    "input derivation",
    r.list(() => {
      r.expect("(");
      const at = r.pos;
      const p = r.path(storeDir);
      r.expect(",");
      const outs = r.list(() => r.string());
      r.expect(")");
      return [p, outs, at] as [string, string[], number];
    }),
  );
  r.expect(",");
  const inputSrcs = r.list(() => r.path(storeDir));
  r.expect(",");
  const platform = r.string();
  r.expect(",");
  const builder = r.string();
  r.expect(",");
  const args = r.list(() => r.string());
  r.expect(",");
  const env = intoMap(
    r,
    "environment variable",
    r.list(() => {
      r.expect("(");
      const at = r.pos;
      const k = r.string();
      r.expect(",");
      const v = r.string();
      r.expect(")");
      return [k, v, at] as [string, string, number];
    }),
  );
  r.expect(")");
  if (r.pos !== buf.length) r.fail("the end of the file after the closing ')'");
  return { name: opts.name, outputs, inputDrvs, inputSrcs, platform, builder, args, env };
}
