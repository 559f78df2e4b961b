// Writing store paths into a folder laid out as a Nix binary cache (as `nix copy --to
// 'file://…?compression=none'` does), for NarFolderSubstituter or Nix itself to read back.
// Each NAR is written before its narinfo, both under temp names renamed into place, so a reader
// never sees a narinfo whose NAR is not complete.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Hash } from "../hash/hash.ts";
import { dumpNar } from "../nar/nar-dump.ts";
import type { LocalStore } from "../store/local-store.ts";
import { NarHashMismatchError } from "../store/store-errors.ts";
import { renderNarInfo } from "./narinfo.ts";
import { ensureCacheInfo } from "./nix-cache-info.ts";

/** What the writer reads from a store. */
export type NarFolderSource = Pick<
  LocalStore,
  "storeDir" | "queryPathInfo" | "toRealPath" | "computeFSClosure" | "topoSortPaths"
>;

export interface NarFolderWriteOptions {
  /** Also write every path the given ones refer to, as `nix copy` does (default true). */
  closure?: boolean;
}

/**
 * Write `paths` (valid in `store`) into the cache folder, references first. Paths the folder
 * already has are skipped. Returns the paths written. Throws NarHashMismatchError if a path's
 * contents no longer match its registered NAR hash (nothing is written for it).
 */
export async function writeNarFolder(
  store: NarFolderSource,
  folder: string,
  paths: Iterable<string>,
  options: NarFolderWriteOptions = {},
): Promise<string[]> {
  const root = resolve(folder);
  mkdirSync(join(root, "nar"), { recursive: true });
  ensureCacheInfo(root, pathToFileURL(root).href, store.storeDir);
  const wanted = options.closure === false ? [...new Set(paths)] : store.computeFSClosure(paths);
  const written: string[] = [];
  for (const path of store.topoSortPaths(wanted)) {
    const narInfoFile = join(root, `${store.storeDir.parsePath(path).hashPart}.narinfo`);
    if (existsSync(narInfoFile)) continue;
    const info = store.queryPathInfo(path);
    const nar = await writeNar(store.toRealPath(path), join(root, "nar"), info.narHash.algo);
    if (!nar.narHash.equals(info.narHash) || nar.size !== info.narSize) {
      rmSync(nar.file, { force: true });
      throw new NarHashMismatchError(
        path,
        `${info.narHash.toString()} (${info.narSize} bytes)`,
        `${nar.narHash.toString()} (${nar.size} bytes)`,
      );
    }
    // Named by the file hash, as Nix names them (it is the NAR hash: no compression).
    const url = `nar/${nar.fileHash.toNix32()}.nar`;
    renameSync(nar.file, join(root, url));
    const text = renderNarInfo({
      storePath: path,
      url,
      compression: "none",
      fileHash: nar.fileHash,
      fileSize: nar.size,
      narHash: info.narHash,
      narSize: info.narSize,
      references: info.references,
      deriver: info.deriver,
      sigs: info.sigs,
      ca: info.ca,
    });
    writeAtomically(narInfoFile, text);
    written.push(path);
  }
  return written;
}

/** Dump the NAR of `realPath` to a temp file in `dir`, hashing it on the way. */
async function writeNar(
  realPath: string,
  dir: string,
  algo: Hash["algo"],
): Promise<{ file: string; narHash: Hash; fileHash: Hash; size: number }> {
  const file = join(dir, `.tmp-${randomBytes(8).toString("hex")}`);
  const sha256 = createHash("sha256");
  const own = algo === "sha256" ? sha256 : createHash(algo);
  let size = 0;
  const handle = await open(file, "wx");
  try {
    // Each chunk is written (awaited) before the next is read into the same buffer.
    for await (const chunk of dumpNar(realPath, { reuseBuffers: true })) {
      sha256.update(chunk);
      if (own !== sha256) own.update(chunk);
      size += chunk.length;
      await handle.write(chunk);
    }
  } catch (e) {
    await handle.close();
    rmSync(file, { force: true });
    throw e;
  }
  await handle.close();
  const fileHash = new Hash("sha256", sha256.digest());
  return {
    file,
    fileHash,
    narHash: own === sha256 ? fileHash : new Hash(algo, own.digest()),
    size,
  };
}

function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.tmp-${randomBytes(8).toString("hex")}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}
