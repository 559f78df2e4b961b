// Path infos on the serve protocol (serve-protocol.md §5.4, §6.2): deriver, references,
// downloadSize, narSize; from 2.4 narHash, ca, sigs. QueryPathInfos answers with
// `path, info` pairs for the valid paths, ended by an empty string.

import type { Hash } from "../../hash/hash.ts";
import type { PathInfoInput, ValidPathInfo } from "../../store/path-info.ts";
import type { WireDecoder } from "../wire/wire-decoder.ts";
import type { WireEncoder } from "../wire/wire-encoder.ts";
import { WireValueError } from "../wire/wire-value-error.ts";
import { supportsServeFeature } from "./serve-version.ts";

/** A path info without its path (the "unkeyed" form of the upstream vectors). */
export interface UnkeyedServePathInfo {
  deriver: string | undefined;
  /** Full store paths, sorted. */
  references: string[];
  /** Nix sends narSize here too. */
  downloadSize: number;
  narSize: number;
  /** Not on the wire before 2.4. */
  narHash: Hash | undefined;
  /** Content address as written (`fixed:r:sha256:…`); always undefined before 2.4. */
  ca: string | undefined;
  /** Sorted; always empty before 2.4. */
  sigs: string[];
}

export interface ServePathInfo extends UnkeyedServePathInfo {
  path: string;
}

export async function readUnkeyedPathInfo(
  d: WireDecoder,
  version: number,
): Promise<UnkeyedServePathInfo> {
  const info: UnkeyedServePathInfo = {
    deriver: await d.optionalStorePath("deriver"),
    references: await d.storePathSet("references"),
    downloadSize: await d.u64("downloadSize"),
    narSize: await d.u64("narSize"),
    narHash: undefined,
    ca: undefined,
    sigs: [],
  };
  if (supportsServeFeature(version, "pathInfoHashes")) {
    const at = d.offset;
    const narHash = await d.token("narHash");
    if (narHash === "") {
      throw d.fail("invalid", "narHash", at, "the NAR hash is empty (it is mandatory from 2.4)");
    }
    info.narHash = d.checkHash(narHash, "sha256", "narHash", at);
    info.ca = await d.optionalContentAddress("ca");
    info.sigs = await d.stringSet("sigs");
  }
  return info;
}

export function writeUnkeyedPathInfo(
  e: WireEncoder,
  info: UnkeyedServePathInfo,
  version: number,
): void {
  e.optionalStorePath(info.deriver, "deriver").storePathSet(info.references, "reference");
  e.u64(info.downloadSize).u64(info.narSize);
  if (supportsServeFeature(version, "pathInfoHashes")) {
    if (info.narHash === undefined) {
      throw new WireValueError("a path info needs its NAR hash from serve protocol 2.4 on");
    }
    e.hashNix32(info.narHash).optionalContentAddress(info.ca).stringSet(info.sigs);
  }
}

export async function readPathInfo(d: WireDecoder, version: number): Promise<ServePathInfo> {
  const path = await d.storePath("path");
  return { path, ...(await readUnkeyedPathInfo(d, version)) };
}

export function writePathInfo(e: WireEncoder, info: ServePathInfo, version: number): void {
  e.storePath(info.path, "path");
  writeUnkeyedPathInfo(e, info, version);
}

/** The QueryPathInfos reply: `path, info` for each valid path, then "". */
export async function readPathInfosReply(
  d: WireDecoder,
  version: number,
): Promise<ServePathInfo[]> {
  const infos: ServePathInfo[] = [];
  for (;;) {
    const at = d.offset;
    const path = await d.storePathText("path of the next path info ('' ends the list)");
    if (path === "") return infos;
    if (infos.length >= d.limits.maxCount) {
      throw d.fail(
        "too-large",
        "the end of the path infos ('')",
        at,
        `more than ${d.limits.maxCount} entries`,
      );
    }
    d.checkStorePath(path, "path of a path info", at);
    infos.push({ path, ...(await readUnkeyedPathInfo(d, version)) });
  }
}

export function writePathInfosReply(
  e: WireEncoder,
  infos: readonly ServePathInfo[],
  version: number,
): void {
  for (const info of infos) writePathInfo(e, info, version);
  e.string("");
}

/** What a server sends for a path its store holds (downloadSize = narSize, as Nix does). */
export function servePathInfoFromValid(info: ValidPathInfo): ServePathInfo {
  return {
    path: info.path,
    deriver: info.deriver,
    references: [...info.references],
    downloadSize: info.narSize,
    narSize: info.narSize,
    narHash: info.narHash,
    ca: info.ca,
    sigs: [...info.sigs],
  };
}

/** What a client registers for a path it received (needs the NAR hash: a peer ≥ 2.4). */
export function pathInfoInputFromServe(info: ServePathInfo): PathInfoInput {
  if (info.narHash === undefined) {
    throw new WireValueError(
      `path info of '${info.path}' has no NAR hash (the peer speaks serve protocol < 2.4)`,
    );
  }
  return {
    path: info.path,
    narHash: info.narHash,
    narSize: info.narSize,
    references: info.references,
    deriver: info.deriver,
    sigs: info.sigs,
    ca: info.ca,
  };
}
