// Realisations on the wire: before 0x208 one string holding the realisation's JSON
// (realisation-json.ts); from 0x208 a DrvOutput (drvPath, output name) followed by the unkeyed
// part, outPath and a set of signatures.

import type { WireDecoder } from "../wire/wire-decoder.ts";
import type { WireEncoder } from "../wire/wire-encoder.ts";
import { WireValueError } from "../wire/wire-value-error.ts";
import {
  type DrvOutput,
  isPathDrvOutput,
  parseDrvOutputId,
  readDrvOutput,
  renderDrvOutputId,
  writeDrvOutput,
} from "./drv-output.ts";
import {
  parseRealisationJson,
  type RealisationJson,
  RealisationJsonError,
  type RealisationJsonForm,
  renderRealisationJson,
} from "./realisation-json.ts";
import { supportsServeFeature } from "./serve-version.ts";

/** Where an output of a derivation ended up. */
export interface Realisation {
  id: DrvOutput;
  /** Full store path. */
  outPath: string;
  /** `keyName:base64` strings, sorted. */
  signatures: string[];
  /** DrvOutput id → full output path; only carried before 0x208 (always empty from Nix 2.8). */
  dependentRealisations: Record<string, string>;
}

/** A realisation without its DrvOutput (0x208: values of builtOutputs). */
export interface UnkeyedRealisation {
  outPath: string;
  signatures: string[];
}

/** Read one realisation JSON string (before 0x208). */
export async function readRealisationJson(
  d: WireDecoder,
  expected = "realisation JSON",
): Promise<RealisationJson> {
  const at = d.offset;
  const bytes = await d.bytes(expected);
  try {
    return parseRealisationJson(bytes, d.storeDir);
  } catch (error) {
    if (!(error instanceof RealisationJsonError)) throw error;
    throw d.fail("invalid", expected, at, error.message);
  }
}

export async function readUnkeyedRealisation(d: WireDecoder): Promise<UnkeyedRealisation> {
  return {
    outPath: await d.storePath("realisation outPath"),
    signatures: await d.stringSet("realisation signatures"),
  };
}

export function writeUnkeyedRealisation(e: WireEncoder, r: UnkeyedRealisation): void {
  e.storePath(r.outPath, "realisation outPath").stringSet(r.signatures);
}

export async function readRealisation(d: WireDecoder, version: number): Promise<Realisation> {
  if (supportsServeFeature(version, "keyedRealisations")) {
    const id = await readDrvOutput(d, version);
    return { id, ...(await readUnkeyedRealisation(d)), dependentRealisations: {} };
  }
  const json = await readRealisationJson(d);
  return {
    id: parseDrvOutputId(json.id),
    outPath: json.outPath,
    signatures: json.signatures,
    dependentRealisations: json.dependentRealisations,
  };
}

export function writeRealisation(
  e: WireEncoder,
  r: Realisation,
  version: number,
  jsonForm: RealisationJsonForm = "nix-2.8",
): void {
  if (supportsServeFeature(version, "keyedRealisations")) {
    if (Object.keys(r.dependentRealisations).length > 0) {
      throw new WireValueError("protocol 0x208 cannot carry dependent realisations");
    }
    writeDrvOutput(e, r.id, version);
    writeUnkeyedRealisation(e, r);
    return;
  }
  if (isPathDrvOutput(r.id)) {
    throw new WireValueError(
      `protocol 0x${version.toString(16)} identifies realisations by derivation hash, got path '${r.id.drvPath}'`,
    );
  }
  const json: RealisationJson = { ...r, id: renderDrvOutputId(r.id) };
  e.string(renderRealisationJson(json, e.storeDir, jsonForm));
}
