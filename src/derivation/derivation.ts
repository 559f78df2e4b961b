// The derivation data model. A BasicDerivation is what the serve protocol sends (no input
// derivations); a Derivation adds inputDrvs, as read from a .drv file.
import type { Hash } from "../hash/hash.ts";
import type { FileIngestionMethod } from "../store-path/make-store-path.ts";
import { encodeBytes } from "./byte-string.ts";

/** Full store paths are kept as strings, exactly as the ATerm holds them. */
export type StorePathText = string;

export type DerivationOutput =
  /** Path fixed by hashing the derivation (the common case). */
  | { type: "inputAddressed"; path: StorePathText }
  /** Path fixed by the expected hash of the contents (fetchers). */
  | { type: "fixed"; path: StorePathText; method: FileIngestionMethod; hash: Hash }
  /** Path not known yet: only while output paths are being computed. */
  | { type: "deferred" };

export interface BasicDerivation {
  /** The derivation's name (from its file name); not part of the ATerm. */
  name: string;
  outputs: Map<string, DerivationOutput>;
  inputSrcs: StorePathText[];
  platform: string;
  builder: string;
  args: string[];
  env: Map<string, string>;
}

export interface Derivation extends BasicDerivation {
  /** Input .drv path → the output names wanted from it. */
  inputDrvs: Map<StorePathText, string[]>;
}

/** `r:sha256` or `sha256`: how the ATerm and Nix name a fixed output's method and algorithm. */
export function printMethodAlgo(method: FileIngestionMethod, hash: Hash): string {
  return `${method === "nar" ? "r:" : ""}${hash.algo}`;
}

export function isFixedOutput(drv: BasicDerivation): boolean {
  const outs = [...drv.outputs.values()];
  return outs.length === 1 && outs[0]!.type === "fixed";
}

/** Byte-wise comparison, the order Nix's std::map and std::set use for strings. */
export function compareBytes(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(encodeBytes(a), encodeBytes(b));
}

/** Sort strings byte-wise; cheap when all are ASCII (UTF-16 order equals byte order then). */
export function sortBytewise(xs: Iterable<string>): string[] {
  const arr = [...xs];
  if (arr.every((s) => /^[\x00-\x7f]*$/.test(s))) return arr.sort();
  return arr.sort(compareBytes);
}
