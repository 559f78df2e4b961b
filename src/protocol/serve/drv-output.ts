// DrvOutput: which output of which derivation a realisation is about. Before 0x208 it is the
// string `<algo>:<base16 hashDerivationModulo>!<output>`; from 0x208 it is (drvPath, output name).

import { Hash, HashParseError } from "../../hash/hash.ts";
import type { WireDecoder } from "../wire/wire-decoder.ts";
import type { WireEncoder } from "../wire/wire-encoder.ts";
import { WireValueError } from "../wire/wire-value-error.ts";
import { supportsServeFeature } from "./serve-version.ts";

/** Before 0x208: the derivation's hash modulo and the output name. */
export interface HashedDrvOutput {
  drvHash: Hash;
  outputName: string;
}

/** From 0x208: the derivation's store path and the output name. */
export interface PathDrvOutput {
  drvPath: string;
  outputName: string;
}

export type DrvOutput = HashedDrvOutput | PathDrvOutput;

/** A string that is not `<algo>:<hash>!<output>`. */
export class DrvOutputIdError extends Error {
  override name = "DrvOutputIdError";
}

/**
 * Parse `sha256:<hex>!out`. Like Nix's DrvOutput::parse the hash may be in any prefixed
 * rendering (base16, nix32, base64, SRI); the output name is everything after the first `!`.
 */
export function parseDrvOutputId(text: string): HashedDrvOutput {
  const bang = text.indexOf("!");
  if (bang < 0) {
    throw new DrvOutputIdError(
      `'${text}' is not a derivation output id: expected '<algo>:<hash>!<output>'`,
    );
  }
  const outputName = text.slice(bang + 1);
  if (outputName === "") {
    throw new DrvOutputIdError(`derivation output id '${text}' has an empty output name`);
  }
  try {
    return { drvHash: Hash.parse(text.slice(0, bang)), outputName };
  } catch (error) {
    if (!(error instanceof HashParseError)) throw error;
    throw new DrvOutputIdError(`derivation output id '${text}': ${error.message}`);
  }
}

/** `sha256:<base16>!out`, as Nix prints it. */
export function renderDrvOutputId(id: HashedDrvOutput): string {
  return `${id.drvHash.format("base16")}!${id.outputName}`;
}

/** The id current Nix writes to 0x206/0x207 peers, which it cannot compute: a zero hash. */
export function compatDrvOutputId(outputName: string): string {
  return `sha256:${"0".repeat(64)}!${outputName}`;
}

export function isPathDrvOutput(id: DrvOutput): id is PathDrvOutput {
  return "drvPath" in id;
}

export async function readDrvOutput(d: WireDecoder, version: number): Promise<DrvOutput> {
  if (supportsServeFeature(version, "keyedRealisations")) {
    return {
      drvPath: await d.storePath("DrvOutput derivation path"),
      outputName: await d.token("DrvOutput output name"),
    };
  }
  const at = d.offset;
  const text = await d.token("DrvOutput id");
  try {
    return parseDrvOutputId(text);
  } catch (error) {
    if (!(error instanceof DrvOutputIdError)) throw error;
    throw d.fail("invalid", "DrvOutput id ('<algo>:<hash>!<output>')", at, error.message);
  }
}

export function writeDrvOutput(e: WireEncoder, id: DrvOutput, version: number): void {
  if (supportsServeFeature(version, "keyedRealisations")) {
    if (!isPathDrvOutput(id)) {
      throw new WireValueError(
        `protocol 0x${version.toString(16)} identifies outputs by derivation path, got a hash`,
      );
    }
    e.storePath(id.drvPath, "DrvOutput derivation path").string(id.outputName);
    return;
  }
  if (isPathDrvOutput(id)) {
    throw new WireValueError(
      `protocol 0x${version.toString(16)} identifies outputs by derivation hash, got path '${id.drvPath}'`,
    );
  }
  e.string(renderDrvOutputId(id));
}
