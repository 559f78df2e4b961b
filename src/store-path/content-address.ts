// Content-address strings as Nix stores them (`ca` in path info, on the wire):
// `text:sha256:<nix32>`, `fixed:<algo>:<nix32>`, `fixed:r:<algo>:<nix32>`.
import { Hash, HashParseError, parseHashAlgo } from "../hash/hash.ts";
import { type FileIngestionMethod, makeFixedOutputPath, makeTextPath } from "./make-store-path.ts";
import type { StoreDir, StorePath } from "./store-path.ts";

export type ContentAddress =
  | { method: "text"; hash: Hash }
  | { method: FileIngestionMethod; hash: Hash };

export function renderContentAddress(ca: ContentAddress): string {
  if (ca.method === "text") return `text:${ca.hash.format("nix32")}`;
  return `fixed:${ca.method === "nar" ? "r:" : ""}${ca.hash.format("nix32")}`;
}

export function parseContentAddress(s: string): ContentAddress {
  if (s.startsWith("text:")) {
    const hash = Hash.parse(s.slice(5));
    if (hash.algo !== "sha256") {
      throw new HashParseError(`content address '${s}': text hashes must be sha256`);
    }
    return { method: "text", hash };
  }
  if (s.startsWith("fixed:")) {
    let rest = s.slice(6);
    let method: FileIngestionMethod = "flat";
    if (rest.startsWith("r:")) {
      method = "nar";
      rest = rest.slice(2);
    }
    const colon = rest.indexOf(":");
    if (colon < 0) throw new HashParseError(`content address '${s}' lacks an algorithm`);
    const algo = parseHashAlgo(rest.slice(0, colon));
    return { method, hash: Hash.parseDigest(rest.slice(colon + 1), algo, false, s) };
  }
  throw new HashParseError(
    `content address '${s}' must start with 'text:' or 'fixed:' (e.g. fixed:r:sha256:<nix32>)`,
  );
}

/** The store path a content address gives to an object with this name and references. */
export function makePathFromContentAddress(
  storeDir: StoreDir,
  name: string,
  ca: ContentAddress,
  references: StorePath[] = [],
  selfReference = false,
): StorePath {
  if (ca.method === "text") return makeTextPath(storeDir, name, ca.hash, references);
  return makeFixedOutputPath(storeDir, name, ca.method, ca.hash, references, selfReference);
}
