// Store paths: `<storeDir>/<32 nix32 chars>-<name>`, with Nix's validation rules.
import { posix } from "node:path";
import { isNix32Chars } from "../hash/nix32.ts";

export const HASH_PART_LEN = 32;
export const MAX_NAME_LEN = 211;

export class StorePathError extends Error {
  override name = "StorePathError";
}

const NAME_CHAR = /^[0-9a-zA-Z+\-._?=]*$/;

/** Throws unless `name` is a valid store path name; `what` says where it came from. */
export function checkStorePathName(name: string, what = `'${name}'`): void {
  if (name.length === 0) throw new StorePathError(`store path ${what} has an empty name`);
  if (name.length > MAX_NAME_LEN) {
    throw new StorePathError(
      `store path ${what} has a name longer than ${MAX_NAME_LEN} characters (${name.length})`,
    );
  }
  // Names that would read as the current or parent directory are refused, as newer Nix does.
  if (name === "." || name === ".." || name.startsWith(".-") || name.startsWith("..-")) {
    throw new StorePathError(`store path ${what} has the name '${name}', which is not allowed`);
  }
  if (!NAME_CHAR.test(name)) {
    const bad = [...name].find((c) => !NAME_CHAR.test(c));
    throw new StorePathError(
      `store path ${what} contains the forbidden character ${JSON.stringify(bad)} in its name (allowed: letters, digits and + - . _ ? =)`,
    );
  }
}

/** A store path without its store directory: hash part and name. */
export class StorePath {
  readonly hashPart: string;
  readonly name: string;

  private constructor(hashPart: string, name: string) {
    this.hashPart = hashPart;
    this.name = name;
  }

  static fromParts(hashPart: string, name: string): StorePath {
    if (hashPart.length !== HASH_PART_LEN || !isNix32Chars(hashPart)) {
      throw new StorePathError(
        `'${hashPart}' is not a valid store path hash part (32 nix32 characters)`,
      );
    }
    checkStorePathName(name, `'${hashPart}-${name}'`);
    return new StorePath(hashPart, name);
  }

  /** Parse a base name such as `g1w7hy3q…-foo`. */
  static parseBaseName(baseName: string): StorePath {
    if (baseName.length < HASH_PART_LEN + 1) {
      throw new StorePathError(`'${baseName}' is too short to be a valid store path`);
    }
    const hashPart = baseName.slice(0, HASH_PART_LEN);
    if (!isNix32Chars(hashPart)) {
      throw new StorePathError(
        `store path '${baseName}' contains illegal base-32 characters in its hash part`,
      );
    }
    if (baseName[HASH_PART_LEN] !== "-") {
      throw new StorePathError(`store path '${baseName}' lacks the '-' after its hash part`);
    }
    return StorePath.fromParts(hashPart, baseName.slice(HASH_PART_LEN + 1));
  }

  get baseName(): string {
    return `${this.hashPart}-${this.name}`;
  }

  isDerivation(): boolean {
    return this.name.endsWith(".drv");
  }

  toString(): string {
    return this.baseName;
  }

  equals(other: StorePath): boolean {
    return this.hashPart === other.hashPart && this.name === other.name;
  }
}

/** A store directory (e.g. `/nix/store`): the logical prefix baked into every path hash. */
/** How many parsed paths a StoreDir remembers (see `parsePath`). */
const PARSED_PATHS_KEPT = 8192;

export class StoreDir {
  readonly path: string;

  constructor(path: string) {
    if (!path.startsWith("/")) {
      throw new StorePathError(`store directory '${path}' must be an absolute path`);
    }
    const normal = posix.normalize(path);
    this.path = normal.length > 1 && normal.endsWith("/") ? normal.slice(0, -1) : normal;
  }

  static readonly nix = new StoreDir("/nix/store");

  /**
   * Paths parsed lately: a server checks the same paths again and again (each request's, then
   * each reply's), and a StorePath never changes.
   */
  readonly #parsed = new Map<string, StorePath>();

  /** Parse a full path that must lie directly in this store directory. */
  parsePath(full: string): StorePath {
    const known = this.#parsed.get(full);
    if (known !== undefined) return known;
    const normal = posix.normalize(full);
    const dir = posix.dirname(normal);
    if (dir !== this.path) {
      throw new StorePathError(`path '${full}' is not in the Nix store ${this.path}`);
    }
    const parsed = StorePath.parseBaseName(posix.basename(normal));
    if (this.#parsed.size >= PARSED_PATHS_KEPT) this.#parsed.clear();
    this.#parsed.set(full, parsed);
    return parsed;
  }

  /**
   * Parse a store path exactly as Nix writes it: `<store>//<hash>-x` or `<store>/./<hash>-x` name
   * the same file but would be other rows, so every path from the wire or a file that enters the
   * store goes through here.
   */
  parseCanonicalPath(full: string, what = "path"): StorePath {
    const parsed = this.parsePath(full);
    const canonical = this.print(parsed);
    if (canonical !== full) {
      throw new StorePathError(
        `${what} '${full}' is not written canonically (expected '${canonical}')`,
      );
    }
    return parsed;
  }

  /** Parse a path inside the store, possibly below a store path (`/nix/store/…-x/bin/y`). */
  toStorePath(full: string): { path: StorePath; rest: string } {
    const normal = posix.normalize(full);
    if (!normal.startsWith(`${this.path}/`)) {
      throw new StorePathError(`path '${full}' is not in the Nix store ${this.path}`);
    }
    const tail = normal.slice(this.path.length + 1);
    const slash = tail.indexOf("/");
    const base = slash < 0 ? tail : tail.slice(0, slash);
    return { path: StorePath.parseBaseName(base), rest: slash < 0 ? "" : tail.slice(slash) };
  }

  isStorePath(full: string): boolean {
    try {
      this.parsePath(full);
      return true;
    } catch {
      return false;
    }
  }

  print(p: StorePath): string {
    return `${this.path}/${p.baseName}`;
  }
}
