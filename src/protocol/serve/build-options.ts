// Build options (serve-protocol.md §5.1), sent after the request of BuildPaths and
// BuildDerivation. Which fields are on the wire depends on the negotiated version; a decoded
// value has exactly those fields.

import type { WireDecoder } from "../wire/wire-decoder.ts";
import type { WireEncoder } from "../wire/wire-encoder.ts";
import { supportsServeFeature } from "./serve-version.ts";

export interface BuildOptions {
  /** Seconds without builder output before the build is killed (0 = no limit). */
  maxSilentTime: number;
  /** Seconds of total build time (0 = no limit). */
  buildTimeout: number;
  /** Bytes of log before the build is killed (0 = no limit); from 2.2. */
  maxLogSize?: number;
  /** Extra rounds to check determinism (0 = build once); from 2.3. */
  nrRepeats?: number;
  /** Fail when repeated rounds differ; from 2.3. */
  enforceDeterminism?: boolean;
  /** Keep the build directory of failed builds; from 2.7. */
  keepFailed?: boolean;
}

/** What a Nix 2.8 client sends when nothing is configured (enforceDeterminism defaults to on). */
export const NIX_2_8_DEFAULT_BUILD_OPTIONS: Readonly<Required<BuildOptions>> = {
  maxSilentTime: 0,
  buildTimeout: 0,
  maxLogSize: 0,
  nrRepeats: 0,
  enforceDeterminism: true,
  keepFailed: false,
};

export async function readBuildOptions(d: WireDecoder, version: number): Promise<BuildOptions> {
  const options: BuildOptions = {
    maxSilentTime: await d.uint("maxSilentTime"),
    buildTimeout: await d.uint("buildTimeout"),
  };
  if (supportsServeFeature(version, "maxLogSize")) options.maxLogSize = await d.u64("maxLogSize");
  if (supportsServeFeature(version, "buildRepeats")) {
    options.nrRepeats = await d.uint("nrRepeats");
    options.enforceDeterminism = await d.bool("enforceDeterminism");
  }
  if (supportsServeFeature(version, "keepFailed")) {
    options.keepFailed = await d.bool("keepFailed");
  }
  return options;
}

/**
 * Write the fields `version` has. A field the caller left out is sent with Nix 2.8's default;
 * fields the version lacks are not sent (an old peer cannot be told about them).
 */
export function writeBuildOptions(e: WireEncoder, options: BuildOptions, version: number): void {
  const defaults = NIX_2_8_DEFAULT_BUILD_OPTIONS;
  e.uint(options.maxSilentTime, "maxSilentTime").uint(options.buildTimeout, "buildTimeout");
  if (supportsServeFeature(version, "maxLogSize")) e.u64(options.maxLogSize ?? defaults.maxLogSize);
  if (supportsServeFeature(version, "buildRepeats")) {
    e.uint(options.nrRepeats ?? defaults.nrRepeats, "nrRepeats");
    e.bool(options.enforceDeterminism ?? defaults.enforceDeterminism);
  }
  if (supportsServeFeature(version, "keepFailed")) {
    e.bool(options.keepFailed ?? defaults.keepFailed);
  }
}
