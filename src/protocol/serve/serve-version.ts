// Serve protocol versions (serve-protocol.md §3–4): `(major << 8) | minor`, major always 2.
// Both sides use the lower of the two versions; every codec takes that negotiated version and
// asks for features by the minor version that introduced them.

export const SERVE_MAGIC_1 = 0x390c9deb;
export const SERVE_MAGIC_2 = 0x5452eecb;

export const SERVE_PROTOCOL_MAJOR = 0x200;
/** Nix 1.8. */
export const OLDEST_SERVE_VERSION = 0x200;
/** Nix ≥ 2.35. */
export const NEWEST_SERVE_VERSION = 0x208;
/** What Nix 2.4 – 2.34 (Nix 2.8 included) send, client and server. */
export const NIX_2_8_SERVE_VERSION = 0x207;

/** The minor version that introduced each feature. */
export const ServeFeature = {
  /** Command 8, BuildDerivation. */
  buildDerivation: 1,
  /** Build option maxLogSize. */
  maxLogSize: 2,
  /** Build options nrRepeats and enforceDeterminism; BuildResult times and timesBuilt. */
  buildRepeats: 3,
  /** narHash, ca and sigs in path infos. */
  pathInfoHashes: 4,
  /** Command 9, AddToStoreNar. */
  addToStoreNar: 5,
  /** builtOutputs in BuildResult (DrvOutput → Realisation JSON). */
  builtOutputs: 6,
  /** Build option keepFailed. */
  keepFailed: 7,
  /** builtOutputs keyed by output name, DrvOutput = (drvPath, outputName). */
  keyedRealisations: 8,
} as const;

export type ServeFeatureName = keyof typeof ServeFeature;

/** Bits 0–7; Nix ignores everything above bit 15 when splitting a version. */
export function serveMinor(version: number): number {
  return version & 0xff;
}

export function serveMajor(version: number): number {
  return version & 0xff00;
}

/** The wire value of version 2.`minor`. */
export function serveVersion(minor: number): number {
  return SERVE_PROTOCOL_MAJOR | (minor & 0xff);
}

export function hasServeMinor(version: number, minor: number): boolean {
  return serveMinor(version) >= minor;
}

export function supportsServeFeature(version: number, feature: ServeFeatureName): boolean {
  return hasServeMinor(version, ServeFeature[feature]);
}

/** The version both sides use: the lower of the two (bits above 15 are ignored, as by Nix). */
export function negotiateServeVersion(ours: number, theirs: number): number {
  return Math.min(ours & 0xffff, theirs & 0xffff);
}

/** `2.7 (0x207)`, for messages. */
export function formatServeVersion(version: number): string {
  return `${serveMajor(version) >> 8}.${serveMinor(version)} (0x${version.toString(16)})`;
}
