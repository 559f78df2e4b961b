// BuildResult on the serve protocol (serve-protocol.md §5.3), the reply of BuildDerivation:
// status and errorMsg; from 2.3 timesBuilt, isNonDeterministic, startTime, stopTime; from 2.6
// builtOutputs as DrvOutput id → realisation JSON; from 2.8 as output name → (outPath, sigs).

import { sortBytewise } from "../../derivation/derivation.ts";
import {
  type BuildResult,
  BuildStatus,
  type BuiltOutput,
  buildResult,
  buildStatusFromCode,
  setEntry,
} from "../build-result.ts";
import type { WireDecoder } from "../wire/wire-decoder.ts";
import type { WireEncoder } from "../wire/wire-encoder.ts";
import { WireValueError } from "../wire/wire-value-error.ts";
import { DrvOutputIdError, parseDrvOutputId } from "./drv-output.ts";
import { readRealisationJson } from "./realisation.ts";
import { type RealisationJsonForm, renderRealisationJson } from "./realisation-json.ts";
import { supportsServeFeature } from "./serve-version.ts";

export interface BuildResultWireOptions {
  /**
   * builtOutputs are on the wire even below 0x206: Nix 2.4 – 2.10 servers send them whatever
   * the client's version (NixOS/nix#6946, recorded in build-derivation-0x202/-0x205). Set it
   * to read replies from such a server at a version below 0x206, or to write them as it does.
   */
  builtOutputsBelow206?: boolean;
  /** How to write the realisation JSON before 0x208 (default `nix-2.8`); readers take all. */
  realisationJson?: RealisationJsonForm;
}

function hasBuiltOutputs(version: number, options: BuildResultWireOptions): boolean {
  return supportsServeFeature(version, "builtOutputs") || options.builtOutputsBelow206 === true;
}

export async function readBuildResult(
  d: WireDecoder,
  version: number,
  options: BuildResultWireOptions = {},
): Promise<BuildResult> {
  const at = d.offset;
  const code = await d.uint("BuildResult status");
  const status = buildStatusFromCode(code);
  if (status === undefined) {
    throw d.fail(
      "invalid",
      "BuildResult status",
      at,
      `unknown status ${code} (Nix knows 0 to ${BuildStatus.NoSubstituters})`,
    );
  }
  const result = buildResult(status, { errorMsg: await d.string("BuildResult errorMsg") });
  if (supportsServeFeature(version, "buildRepeats")) {
    result.timesBuilt = await d.uint("BuildResult timesBuilt");
    result.isNonDeterministic = await d.bool("BuildResult isNonDeterministic");
    result.startTime = await d.u64("BuildResult startTime");
    result.stopTime = await d.u64("BuildResult stopTime");
  }
  if (supportsServeFeature(version, "keyedRealisations")) {
    result.builtOutputs = await readKeyedBuiltOutputs(d);
  } else if (hasBuiltOutputs(version, options)) {
    result.builtOutputs = await readJsonBuiltOutputs(d);
  }
  return result;
}

/**
 * The builtOutputs map alone, in the form `version` has (the 0x206 form below 0x206): for
 * clients that learn only after reading the times whether a server sent it (serve-client.ts).
 */
export async function readBuiltOutputs(
  d: WireDecoder,
  version: number,
): Promise<Record<string, BuiltOutput>> {
  return supportsServeFeature(version, "keyedRealisations")
    ? readKeyedBuiltOutputs(d)
    : readJsonBuiltOutputs(d);
}

/** 0x206 – 0x207: map of DrvOutput id → realisation JSON whose `id` repeats the key. */
async function readJsonBuiltOutputs(d: WireDecoder): Promise<Record<string, BuiltOutput>> {
  const out: Record<string, BuiltOutput> = {};
  const n = await d.count("builtOutputs");
  for (let i = 0; i < n; i++) {
    const keyAt = d.offset;
    const key = await d.token("builtOutputs key (DrvOutput id)");
    let outputName: string;
    try {
      outputName = parseDrvOutputId(key).outputName;
    } catch (error) {
      if (!(error instanceof DrvOutputIdError)) throw error;
      throw d.fail("invalid", "builtOutputs key (DrvOutput id)", keyAt, error.message);
    }
    if (Object.hasOwn(out, outputName)) {
      throw d.fail("invalid", "builtOutputs key", keyAt, `output '${outputName}' appears twice`);
    }
    const valueAt = d.offset;
    const json = await readRealisationJson(d, `realisation JSON of '${key}'`);
    if (json.id !== key) {
      throw d.fail(
        "invalid",
        `realisation JSON of '${key}'`,
        valueAt,
        `its id '${json.id}' differs from its key`,
      );
    }
    setEntry(out, outputName, {
      id: key,
      outPath: json.outPath,
      ...(json.signatures.length > 0 ? { signatures: json.signatures } : {}),
      ...(Object.keys(json.dependentRealisations).length > 0
        ? { dependentRealisations: json.dependentRealisations }
        : {}),
    });
  }
  return out;
}

/** 0x208: map of output name → (outPath, signatures). */
async function readKeyedBuiltOutputs(d: WireDecoder): Promise<Record<string, BuiltOutput>> {
  const out: Record<string, BuiltOutput> = {};
  const n = await d.count("builtOutputs");
  for (let i = 0; i < n; i++) {
    const at = d.offset;
    const name = await d.token("builtOutputs output name");
    if (Object.hasOwn(out, name)) {
      throw d.fail("invalid", "builtOutputs output name", at, `output '${name}' appears twice`);
    }
    const outPath = await d.storePath(`builtOutputs outPath of '${name}'`);
    const signatures = await d.stringSet(`builtOutputs signatures of '${name}'`);
    setEntry(out, name, { id: "", outPath, ...(signatures.length > 0 ? { signatures } : {}) });
  }
  return out;
}

/**
 * Write the fields `version` has: times are dropped below 2.3, builtOutputs below 2.6 (unless
 * `builtOutputsBelow206`), ids and dependent realisations from 2.8 (that form has no place
 * for them).
 */
export function writeBuildResult(
  e: WireEncoder,
  r: BuildResult,
  version: number,
  options: BuildResultWireOptions = {},
): void {
  e.uint(BuildStatus[r.status], "BuildResult status").string(r.errorMsg);
  if (supportsServeFeature(version, "buildRepeats")) {
    e.uint(r.timesBuilt, "timesBuilt").bool(r.isNonDeterministic);
    e.u64(r.startTime).u64(r.stopTime);
  }
  if (supportsServeFeature(version, "keyedRealisations")) {
    const names = sortBytewise(Object.keys(r.builtOutputs));
    e.u64(names.length);
    for (const name of names) {
      const b = r.builtOutputs[name]!;
      e.string(name).storePath(b.outPath, `builtOutputs outPath of '${name}'`);
      e.stringSet(b.signatures ?? []);
    }
  } else if (hasBuiltOutputs(version, options)) {
    const form = options.realisationJson ?? "nix-2.8";
    const entries = Object.entries(r.builtOutputs).map(
      ([name, b]) => [checkBuiltOutputId(name, b), b] as const,
    );
    const ids = sortBytewise(entries.map(([id]) => id));
    const byId = new Map(entries);
    e.u64(ids.length);
    for (const id of ids) {
      const b = byId.get(id)!;
      const json = {
        id,
        outPath: b.outPath,
        signatures: b.signatures ?? [],
        dependentRealisations: b.dependentRealisations ?? {},
      };
      e.string(id).string(renderRealisationJson(json, e.storeDir, form));
    }
  }
}

function checkBuiltOutputId(name: string, b: BuiltOutput): string {
  let outputName: string;
  try {
    outputName = parseDrvOutputId(b.id).outputName;
  } catch (error) {
    if (!(error instanceof DrvOutputIdError)) throw error;
    throw new WireValueError(`built output '${name}': ${error.message}`);
  }
  if (outputName !== name) {
    throw new WireValueError(
      `built output '${name}' has the id '${b.id}' of output '${outputName}'`,
    );
  }
  return b.id;
}
