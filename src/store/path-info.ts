// What the store knows about a valid path (formats.md §9), and Nix 2.8's `path-info --json`.
import type { Hash } from "../hash/hash.ts";

/** Full store paths are strings (`/nix/store/<hash>-<name>`), as Nix prints them. */
export interface ValidPathInfo {
  path: string;
  narHash: Hash;
  narSize: number;
  /** Full paths, sorted; may include the path itself. */
  references: string[];
  deriver: string | undefined;
  /** Unix seconds. */
  registrationTime: number;
  /** Built on this machine (as opposed to imported). */
  ultimate: boolean;
  sigs: string[];
  /** Content address, e.g. `fixed:r:sha256:<nix32>` or `text:sha256:<nix32>`. */
  ca: string | undefined;
}

/** What a caller supplies to register a path; the rest has defaults. */
export interface PathInfoInput {
  path: string;
  narHash: Hash;
  narSize: number;
  references?: readonly string[];
  deriver?: string | undefined;
  /** Default: now. */
  registrationTime?: number;
  ultimate?: boolean;
  sigs?: readonly string[];
  ca?: string | undefined;
}

/** One element of `nix path-info --json` (Nix 2.8): keys in Nix's order, absent when empty. */
export function pathInfoJson(
  info: ValidPathInfo,
  extra: { closureSize?: number } = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = {
    path: info.path,
    narHash: info.narHash.toSri(),
    narSize: info.narSize,
    references: info.references,
  };
  if (info.ca !== undefined) out.ca = info.ca;
  if (extra.closureSize !== undefined) out.closureSize = extra.closureSize;
  if (info.deriver !== undefined) out.deriver = info.deriver;
  if (info.registrationTime) out.registrationTime = info.registrationTime;
  if (info.ultimate) out.ultimate = true;
  if (info.sigs.length > 0) out.signatures = info.sigs;
  return out;
}
