// Nix's `.narinfo` text format (nar-info.cc): one `Name: value` line per field, in a binary
// cache as `<hashPart>.narinfo` next to the NAR it points to with `URL:`. Paths are full store
// paths here; the file holds references and deriver as base names.
import { Hash, HashParseError } from "../hash/hash.ts";
import type { PathInfoInput } from "../store/path-info.ts";
import { parseContentAddress } from "../store-path/content-address.ts";
import { type StoreDir, StorePath, StorePathError } from "../store-path/store-path.ts";
import { NarInfoError } from "./substituter-errors.ts";

export interface NarInfo {
  /** Full store path. */
  storePath: string;
  /** Where the (possibly compressed) NAR is, relative to the cache. */
  url: string;
  /** `none`, `xz`, `bzip2`, `zstd`…; Nix's default when absent is `bzip2`. */
  compression: string;
  /** Hash and size of the file at `url` (the NAR itself when uncompressed). */
  fileHash?: Hash | undefined;
  fileSize?: number | undefined;
  narHash: Hash;
  narSize: number;
  /** Full store paths, in file order. */
  references: string[];
  /** Full store path of the deriver. */
  deriver?: string | undefined;
  system?: string | undefined;
  sigs: string[];
  /** Content address, e.g. `fixed:r:sha256:<nix32>`. */
  ca?: string | undefined;
}

/** Parse a `.narinfo`; `whence` names the file in errors. Throws NarInfoError. */
export function parseNarInfo(text: string, storeDir: StoreDir, whence: string): NarInfo {
  const corrupt = (reason: string) => new NarInfoError(whence, reason);
  // Nix needs every line ended by a newline: a file cut short is corrupt, not shorter.
  if (text.length > 0 && !text.endsWith("\n")) throw corrupt("its last line has no newline");
  const lines = text.length === 0 ? [] : text.slice(0, -1).split("\n");

  let storePath: string | undefined;
  let url = "";
  let compression = "";
  let fileHash: Hash | undefined;
  let fileSize: number | undefined;
  let narHash: Hash | undefined;
  let narSize = 0;
  let references: string[] | undefined;
  let deriver: string | undefined;
  let system: string | undefined;
  const sigs: string[] = [];
  let ca: string | undefined;
  let haveCa = false;

  const hashField = (name: string, value: string) => {
    try {
      return Hash.parse(value);
    } catch (e) {
      if (e instanceof HashParseError) throw corrupt(`bad ${name} '${value}': ${e.message}`);
      throw e;
    }
  };
  const sizeField = (name: string, value: string) => {
    const n = Number(value);
    if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n)) {
      throw corrupt(`${name} '${value}' is not a number`);
    }
    return n;
  };
  const pathField = (name: string, baseName: string) => {
    try {
      return storeDir.print(StorePath.parseBaseName(baseName));
    } catch (e) {
      if (e instanceof StorePathError) throw corrupt(`bad ${name} '${baseName}': ${e.message}`);
      throw e;
    }
  };

  lines.forEach((line, i) => {
    const colon = line.indexOf(":");
    if (colon < 0) throw corrupt(`line ${i + 1} ('${line}') is not 'Name: value'`);
    const name = line.slice(0, colon);
    // Nix writes `Name: value`; a missing space (as in an empty `References:`) is tolerated.
    const value = line.slice(line[colon + 1] === " " ? colon + 2 : colon + 1);
    switch (name) {
      case "StorePath":
        try {
          storeDir.parsePath(value);
        } catch (e) {
          if (e instanceof StorePathError) throw corrupt(`bad StorePath: ${e.message}`);
          throw e;
        }
        storePath = value;
        break;
      case "URL":
        url = value;
        break;
      case "Compression":
        compression = value;
        break;
      case "FileHash":
        fileHash = hashField(name, value);
        break;
      case "FileSize":
        fileSize = sizeField(name, value);
        break;
      case "NarHash":
        narHash = hashField(name, value);
        break;
      case "NarSize":
        narSize = sizeField(name, value);
        break;
      case "References":
        if (references !== undefined) throw corrupt("it has two References lines");
        references = value
          .split(" ")
          .filter((r) => r !== "")
          .map((r) => pathField("reference", r));
        break;
      case "Deriver":
        deriver = value === "unknown-deriver" ? undefined : pathField("Deriver", value);
        break;
      case "System":
        system = value;
        break;
      case "Sig":
        sigs.push(value);
        break;
      case "CA":
        if (haveCa) throw corrupt("it has two CA lines");
        haveCa = true;
        if (value !== "") {
          try {
            parseContentAddress(value);
          } catch (e) {
            if (e instanceof HashParseError) throw corrupt(`bad CA '${value}': ${e.message}`);
            throw e;
          }
          ca = value;
        }
        break;
      default:
      // Fields added by later versions are skipped, as Nix does.
    }
  });

  if (storePath === undefined) throw corrupt("it has no StorePath");
  if (narHash === undefined) throw corrupt("it has no NarHash");
  if (url === "") throw corrupt("it has no URL");
  if (narSize === 0) throw corrupt("it has no NarSize (or NarSize 0)");
  return {
    storePath,
    url,
    compression: compression === "" ? "bzip2" : compression,
    fileHash,
    fileSize,
    narHash,
    narSize,
    references: references ?? [],
    deriver,
    system,
    sigs,
    ca,
  };
}

/** Render as Nix's NarInfo::to_string does: same fields, same order, hashes as `sha256:<nix32>`. */
export function renderNarInfo(info: NarInfo): string {
  const base = (p: string) => p.slice(p.lastIndexOf("/") + 1);
  let s = `StorePath: ${info.storePath}\nURL: ${info.url}\nCompression: ${info.compression}\n`;
  if (info.fileHash !== undefined) s += `FileHash: ${info.fileHash.toString()}\n`;
  if (info.fileSize !== undefined) s += `FileSize: ${info.fileSize}\n`;
  s += `NarHash: ${info.narHash.toString()}\nNarSize: ${info.narSize}\n`;
  s += `References: ${info.references.map(base).join(" ")}\n`;
  if (info.deriver !== undefined) s += `Deriver: ${base(info.deriver)}\n`;
  if (info.system !== undefined && info.system !== "") s += `System: ${info.system}\n`;
  for (const sig of info.sigs) s += `Sig: ${sig}\n`;
  if (info.ca !== undefined) s += `CA: ${info.ca}\n`;
  return s;
}

/** What the store needs to register the path a narinfo describes. */
export function pathInfoOfNarInfo(info: NarInfo): PathInfoInput {
  return {
    path: info.storePath,
    narHash: info.narHash,
    narSize: info.narSize,
    references: info.references,
    deriver: info.deriver,
    sigs: info.sigs,
    ca: info.ca,
  };
}
