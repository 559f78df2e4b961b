// How Nix names things in the store: sha256 of a fingerprint, folded to 20 bytes, in nix32.
import { compressHash } from "../hash/compress-hash.ts";
import { Hash } from "../hash/hash.ts";
import { nix32Encode } from "../hash/nix32.ts";
import { type StoreDir, StorePath, StorePathError } from "./store-path.ts";

/** How a fixed output's contents are hashed: the file itself, or its NAR serialisation. */
export type FileIngestionMethod = "flat" | "nar";

/** `<type>:sha256:<hex>:<storeDir>:<name>` → store path. */
export function makeStorePath(
  storeDir: StoreDir,
  type: string,
  hash: Hash,
  name: string,
): StorePath {
  if (hash.algo !== "sha256") {
    throw new StorePathError(`store path fingerprints use sha256 digests, not ${hash.algo}`);
  }
  const fingerprint = `${type}:sha256:${hash.toBase16()}:${storeDir.path}:${name}`;
  const digest = Hash.of("sha256", fingerprint).digest;
  return StorePath.fromParts(nix32Encode(compressHash(digest, 20)), name);
}

/** The type string of text and source paths: references appended in sorted order. */
function typeWithReferences(
  base: string,
  storeDir: StoreDir,
  references: Iterable<StorePath>,
  selfReference: boolean,
): string {
  const refs = [...references].map((p) => storeDir.print(p)).sort();
  let type = base;
  for (const r of refs) type += `:${r}`;
  if (selfReference) type += ":self";
  return type;
}

/** Path of a text object (`builtins.toFile`, a `.drv` file): its references are part of the name. */
export function makeTextPath(
  storeDir: StoreDir,
  name: string,
  contentHash: Hash,
  references: Iterable<StorePath> = [],
): StorePath {
  if (contentHash.algo !== "sha256") {
    throw new StorePathError(`text paths need a sha256 content hash, not ${contentHash.algo}`);
  }
  return makeStorePath(
    storeDir,
    typeWithReferences("text", storeDir, references, false),
    contentHash,
    name,
  );
}

/** The inner digest Nix hashes for fixed outputs other than recursive sha256. */
export function fixedOutputInnerHash(method: FileIngestionMethod, hash: Hash): Hash {
  const mode = method === "nar" ? "r:" : "";
  return Hash.of("sha256", `fixed:out:${mode}${hash.algo}:${hash.toBase16()}:`);
}

/** Path of a fixed-output (content-addressed) object: `nix-store --add`, fixed-output builds. */
export function makeFixedOutputPath(
  storeDir: StoreDir,
  name: string,
  method: FileIngestionMethod,
  hash: Hash,
  references: Iterable<StorePath> = [],
  selfReference = false,
): StorePath {
  if (method === "nar" && hash.algo === "sha256") {
    return makeStorePath(
      storeDir,
      typeWithReferences("source", storeDir, references, selfReference),
      hash,
      name,
    );
  }
  if (selfReference || [...references].length > 0) {
    throw new StorePathError(
      `fixed-output path '${name}' hashed with ${method === "nar" ? "r:" : ""}${hash.algo} cannot have references (only recursive sha256 can)`,
    );
  }
  return makeStorePath(storeDir, "output:out", fixedOutputInnerHash(method, hash), name);
}

/** Output name → store path name: `out` keeps the derivation's name, others get a suffix. */
export function outputPathName(drvName: string, outputName: string): string {
  return outputName === "out" ? drvName : `${drvName}-${outputName}`;
}

/** Path of an input-addressed derivation output, from the derivation's hashDerivationModulo. */
export function makeOutputPath(
  storeDir: StoreDir,
  outputName: string,
  hashModulo: Hash,
  drvName: string,
): StorePath {
  return makeStorePath(
    storeDir,
    `output:${outputName}`,
    hashModulo,
    outputPathName(drvName, outputName),
  );
}
