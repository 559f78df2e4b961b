// A local folder laid out as a Nix binary cache (what `nix copy --to file://…` writes):
// `nix-cache-info`, `<hashPart>.narinfo` per path, and the NARs under the narinfo's `URL:`
// (usually `nar/<fileHash>.nar`). Only uncompressed NARs (`Compression: none`) are read.
import { createReadStream, existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { PathInfoInput } from "../store/path-info.ts";
import type { StoreDir } from "../store-path/store-path.ts";
import { type NarInfo, parseNarInfo, pathInfoOfNarInfo } from "./narinfo.ts";
import { checkCacheStoreDir } from "./nix-cache-info.ts";
import type { Substituter } from "./substituter.ts";
import {
  NarInfoError,
  SubstituteGoneError,
  SubstituterLocationError,
  UnsupportedCompressionError,
} from "./substituter-errors.ts";

export class NarFolderSubstituter implements Substituter {
  readonly name: string;
  readonly folder: string;
  readonly #storeDir: StoreDir;
  /** Parsed narinfos by store path (a cache's files do not change under a build). */
  readonly #infos = new Map<string, NarInfo | undefined>();
  #checked = false;

  constructor(folder: string, storeDir: StoreDir) {
    this.folder = resolve(folder);
    this.#storeDir = storeDir;
    this.name = pathToFileURL(this.folder).href;
  }

  async queryPathInfo(path: string): Promise<PathInfoInput | undefined> {
    const info = await this.narInfo(path);
    if (info === undefined) return undefined;
    // Refused before the goal realises references for a NAR it could not read anyway.
    this.#checkCompression(info);
    return pathInfoOfNarInfo(info);
  }

  async *fetchNar(path: string): AsyncIterable<Uint8Array> {
    const info = await this.narInfo(path);
    if (info === undefined) throw new SubstituteGoneError(path, this.#narInfoFile(path));
    this.#checkCompression(info);
    const file = resolve(this.folder, info.url);
    const rel = relative(this.folder, file);
    if (rel === "" || rel === ".." || rel.startsWith("../") || isAbsolute(rel)) {
      throw new NarInfoError(this.#narInfoFile(path), `URL '${info.url}' points outside the cache`);
    }
    if (!existsSync(file)) throw new SubstituteGoneError(path, file);
    yield* createReadStream(file);
  }

  /** The parsed `.narinfo` of `path`, or undefined if the cache does not have it. */
  async narInfo(path: string): Promise<NarInfo | undefined> {
    if (this.#infos.has(path)) return this.#infos.get(path);
    this.#checkFolder();
    const file = this.#narInfoFile(path);
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      this.#infos.set(path, undefined);
      return undefined;
    }
    const info = parseNarInfo(text, this.#storeDir, file);
    this.#infos.set(path, info);
    return info;
  }

  #narInfoFile(path: string): string {
    return join(this.folder, `${this.#storeDir.parsePath(path).hashPart}.narinfo`);
  }

  #checkFolder(): void {
    if (this.#checked) return;
    if (!existsSync(this.folder) || !statSync(this.folder).isDirectory()) {
      throw new SubstituterLocationError(
        `binary cache folder '${this.folder}' does not exist; check the substituter's path`,
      );
    }
    checkCacheStoreDir(this.folder, this.name, this.#storeDir);
    this.#checked = true;
  }

  #checkCompression(info: NarInfo): void {
    if (info.compression !== "none") {
      throw new UnsupportedCompressionError(info.storePath, info.compression, this.name);
    }
  }
}
