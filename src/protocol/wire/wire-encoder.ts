// Encoding the shared protocol primitives (serve-protocol.md §2) into a ByteWriter. Sets are
// written sorted byte-wise, as Nix writes its std::sets; store paths are checked against the
// store directory so nixstate never sends a path the peer would refuse.

import { encodeBytes } from "../../derivation/byte-string.ts";
import { sortBytewise } from "../../derivation/derivation.ts";
import type { Hash } from "../../hash/hash.ts";
import { ByteWriter } from "../../io/byte-writer.ts";
import { type StoreDir, StorePathError } from "../../store-path/store-path.ts";
import { MAX_WIRE_INT } from "./wire-decoder.ts";
import { WireValueError } from "./wire-value-error.ts";

export class WireEncoder {
  readonly storeDir: StoreDir;
  readonly writer: ByteWriter;

  constructor(storeDir: StoreDir, writer = new ByteWriter(4096)) {
    this.storeDir = storeDir;
    this.writer = writer;
  }

  /** Bytes encoded since the last `take`. */
  get length(): number {
    return this.writer.length;
  }

  /** Hand out the bytes encoded so far and start over. */
  take(): Buffer {
    return this.writer.take();
  }

  u64(value: number): this {
    this.writer.u64(value);
    return this;
  }

  /** Nix's 32-bit "int" (sent as a u64). */
  uint(value: number, what = "value"): this {
    if (!Number.isInteger(value) || value < 0 || value > MAX_WIRE_INT) {
      throw new WireValueError(`${what} must be an integer in [0, 2^32), got ${value}`);
    }
    return this.u64(value);
  }

  bool(value: boolean): this {
    return this.u64(value ? 1 : 0);
  }

  /** A wire string; a JS string is written as its bytes (see byte-string.ts). */
  string(value: string | Uint8Array): this {
    this.writer.string(typeof value === "string" ? encodeBytes(value) : value);
    return this;
  }

  list<T>(items: readonly T[], item: (value: T) => void): this {
    this.u64(items.length);
    for (const value of items) item(value);
    return this;
  }

  stringList(items: readonly string[]): this {
    return this.list(items, (s) => this.string(s));
  }

  /** A set: sorted byte-wise, duplicates dropped. */
  stringSet(items: Iterable<string>): this {
    return this.stringList(sortBytewise(new Set(items)));
  }

  /** Throw unless `path` is a canonical store path directly inside the store directory. */
  checkStorePath(path: string, what: string): string {
    try {
      if (this.storeDir.print(this.storeDir.parsePath(path)) === path) return path;
    } catch (error) {
      if (!(error instanceof StorePathError)) throw error;
      throw new WireValueError(`${what} '${path}': ${error.message}`);
    }
    throw new WireValueError(`${what} '${path}' is not a canonical path in ${this.storeDir.path}`);
  }

  storePath(path: string, what = "store path"): this {
    return this.string(this.checkStorePath(path, what));
  }

  /** A store path, or "" for none. */
  optionalStorePath(path: string | undefined, what = "store path"): this {
    return path === undefined ? this.string("") : this.storePath(path, what);
  }

  storePathSet(paths: Iterable<string>, what = "store path"): this {
    const sorted = sortBytewise(new Set(paths));
    for (const p of sorted) this.checkStorePath(p, what);
    return this.stringList(sorted);
  }

  /** `sha256:<nix32>`: how Nix prints a NAR hash in path infos. */
  hashNix32(hash: Hash): this {
    return this.string(hash.format("nix32"));
  }

  /** Bare base16 digest: how Nix 2.8's client sends AddToStoreNar's NAR hash. */
  hashBase16(hash: Hash): this {
    return this.string(hash.toBase16());
  }

  /** A content address string, or "" for none. */
  optionalContentAddress(ca: string | undefined): this {
    return this.string(ca ?? "");
  }
}
