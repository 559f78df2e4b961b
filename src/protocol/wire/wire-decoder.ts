// Decoding the primitives shared by Nix's protocols (serve-protocol.md §2) from a ByteReader:
// u64s, Nix's 32-bit "int"s and booleans, padded strings with bounded lengths, lists, sets,
// store paths validated against a store directory, hashes and content addresses. Everything
// it throws about the data is a ProtocolError carrying the absolute offset of the bad item.

import { decodeBytes } from "../../derivation/byte-string.ts";
import { sortBytewise } from "../../derivation/derivation.ts";
import { Hash, type HashAlgo, HashParseError } from "../../hash/hash.ts";
import type { ByteReader } from "../../io/byte-reader.ts";
import { parseContentAddress } from "../../store-path/content-address.ts";
import {
  HASH_PART_LEN,
  MAX_NAME_LEN,
  type StoreDir,
  StorePathError,
} from "../../store-path/store-path.ts";
import { asProtocolError, ProtocolError, type ProtocolErrorCode } from "./protocol-error.ts";
import { DEFAULT_WIRE_LIMITS, type WireLimits } from "./wire-limits.ts";

/** Nix reads magics, versions, command codes, booleans and options as 32-bit unsigned ints. */
export const MAX_WIRE_INT = 0xffff_ffff;

export class WireDecoder {
  readonly reader: ByteReader;
  readonly storeDir: StoreDir;
  readonly limits: Readonly<WireLimits>;
  /** No valid store path in this store directory is longer. */
  readonly maxStorePathLength: number;

  constructor(reader: ByteReader, storeDir: StoreDir, limits: Partial<WireLimits> = {}) {
    this.reader = reader;
    this.storeDir = storeDir;
    this.limits = { ...DEFAULT_WIRE_LIMITS, ...limits };
    this.maxStorePathLength = storeDir.path.length + 1 + HASH_PART_LEN + 1 + MAX_NAME_LEN;
  }

  /** Absolute offset of the next byte to decode. */
  get offset(): number {
    return this.reader.offset;
  }

  /** True when the input ended exactly here (e.g. where the next command would start). */
  async atEnd(): Promise<boolean> {
    return this.reader.atEnd();
  }

  /** A ProtocolError about the item that starts at `offset` (for the caller to throw). */
  fail(
    code: ProtocolErrorCode,
    expected: string,
    offset: number,
    problem: string,
    cause?: unknown,
  ): ProtocolError {
    return new ProtocolError(code, expected, offset, problem, cause ? { cause } : undefined);
  }

  /** Run a raw reader operation, reporting its failures as ProtocolErrors about `expected`. */
  async wrap<T>(expected: string, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      throw asProtocolError(error, expected);
    }
  }

  async u64(expected: string, limit = Number.MAX_SAFE_INTEGER): Promise<number> {
    return this.wrap(expected, () => this.reader.readU64(limit, expected));
  }

  /** Nix's `readInt`: a u64 that must fit 32 bits. */
  async uint(expected: string): Promise<number> {
    return this.u64(expected, MAX_WIRE_INT);
  }

  /** Writers send 0 or 1; like Nix, any other (32-bit) value reads as true. */
  async bool(expected: string): Promise<boolean> {
    return (await this.uint(expected)) !== 0;
  }

  /** Raw bytes of a wire string of at most `maxLength` bytes. */
  async bytes(expected: string, maxLength = this.limits.maxStringLength): Promise<Buffer> {
    return this.wrap(expected, () => this.reader.readString(maxLength, expected));
  }

  /** A free-text string (bytes that are not UTF-8 survive a round trip; see byte-string.ts). */
  async string(expected: string, maxLength = this.limits.maxStringLength): Promise<string> {
    return decodeBytes(await this.bytes(expected, maxLength));
  }

  /** A short string: a name, hash, content address, signature, system type. */
  async token(expected: string): Promise<string> {
    return this.string(expected, this.limits.maxTokenLength);
  }

  /** The element count of a list, set or map. */
  async count(expected: string): Promise<number> {
    return this.u64(`number of ${expected}`, this.limits.maxCount);
  }

  /** u64 count, then the elements; order is kept. */
  async list<T>(expected: string, item: (index: number) => Promise<T>): Promise<T[]> {
    const n = await this.count(expected);
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(await item(i));
    return out;
  }

  async stringList(expected: string, maxLength = this.limits.maxStringLength): Promise<string[]> {
    return this.list(expected, () => this.string(`element of ${expected}`, maxLength));
  }

  /** A set of strings: sorted byte-wise and without duplicates, as Nix's std::set holds it. */
  async stringSet(expected: string, maxLength = this.limits.maxTokenLength): Promise<string[]> {
    return sortBytewise(new Set(await this.stringList(expected, maxLength)));
  }

  /** The raw text where a store path (or "") is expected, bounded by the longest valid path. */
  async storePathText(expected: string): Promise<string> {
    return (await this.bytes(expected, this.maxStorePathLength)).toString("latin1");
  }

  /** Throw unless `text` is a canonical store path directly inside this store directory. */
  checkStorePath(text: string, expected: string, offset: number): string {
    let problem: string;
    try {
      this.storeDir.parseCanonicalPath(text);
      return text;
    } catch (error) {
      if (!(error instanceof StorePathError)) throw error;
      problem = error.message;
    }
    throw this.fail(
      "invalid",
      `${expected} (a store path in ${this.storeDir.path})`,
      offset,
      problem,
    );
  }

  async storePath(expected: string): Promise<string> {
    const at = this.offset;
    return this.checkStorePath(await this.storePathText(expected), expected, at);
  }

  /** A store path or "" (absent), e.g. a deriver. */
  async optionalStorePath(expected: string): Promise<string | undefined> {
    const at = this.offset;
    const text = await this.storePathText(expected);
    return text === "" ? undefined : this.checkStorePath(text, expected, at);
  }

  /** A set of store paths, sorted and without duplicates. */
  async storePathSet(expected: string): Promise<string[]> {
    const paths = await this.list(expected, () => this.storePath(`element of ${expected}`));
    return sortBytewise(new Set(paths));
  }

  /**
   * A hash in any rendering Nix's `Hash::parseAny` accepts: `algo:` + base16/nix32/base64, SRI,
   * or a bare digest of `algo`.
   */
  async hash(expected: string, algo: HashAlgo): Promise<Hash> {
    const at = this.offset;
    return this.checkHash(await this.token(expected), algo, expected, at);
  }

  /** Parse hash text read at `offset` (see `hash`). */
  checkHash(text: string, algo: HashAlgo, expected: string, offset: number): Hash {
    try {
      return Hash.parse(text, algo);
    } catch (error) {
      if (!(error instanceof HashParseError)) throw error;
      throw this.fail("invalid", `${expected} (a ${algo} hash)`, offset, error.message, error);
    }
  }

  /** A content address (`text:sha256:…`, `fixed:…`, `fixed:r:…`), kept as written. */
  async contentAddress(expected: string): Promise<string> {
    const at = this.offset;
    const text = await this.token(expected);
    return this.#checkContentAddress(text, expected, at);
  }

  /** A content address or "" (none). */
  async optionalContentAddress(expected: string): Promise<string | undefined> {
    const at = this.offset;
    const text = await this.token(expected);
    return text === "" ? undefined : this.#checkContentAddress(text, expected, at);
  }

  #checkContentAddress(text: string, expected: string, at: number): string {
    try {
      parseContentAddress(text);
      return text;
    } catch (error) {
      if (!(error instanceof HashParseError)) throw error;
      throw this.fail("invalid", `${expected} (a content address)`, at, error.message, error);
    }
  }
}
