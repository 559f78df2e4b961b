// The fixed-layout replies (serve-protocol.md §6): path sets (QueryValidPaths, QueryClosure),
// the `1` that acknowledges ImportPaths and AddToStoreNar, and BuildPaths' status. The others
// have their own files: path infos (serve-path-info.ts), BuildResult (serve-build-result.ts),
// NARs (wire-nar.ts) and export streams (export-stream.ts).

import type { WireDecoder } from "../wire/wire-decoder.ts";
import type { WireEncoder } from "../wire/wire-encoder.ts";

/** QueryValidPaths' and QueryClosure's reply: a set of store paths. */
export async function readPathSetReply(d: WireDecoder, expected: string): Promise<string[]> {
  return d.storePathSet(expected);
}

export function writePathSetReply(e: WireEncoder, paths: Iterable<string>): void {
  e.storePathSet(paths);
}

/** ImportPaths and AddToStoreNar answer `1` once everything is stored. */
export async function readImportAck(
  d: WireDecoder,
  expected = "the import acknowledgement",
): Promise<void> {
  const at = d.offset;
  const value = await d.u64(expected);
  if (value !== 1) throw d.fail("invalid", `${expected} (1)`, at, `got ${value}`);
}

export function writeImportAck(e: WireEncoder): void {
  e.u64(1);
}

/**
 * BuildPaths' reply: 0 on success, else Nix's exit status (100 build failure, 101 timeout,
 * 102 hash mismatch, 104 not deterministic, 1 other) and the error message.
 */
export interface BuildPathsReply {
  status: number;
  /** Present exactly when status is not 0. */
  errorMsg?: string;
}

export async function readBuildPathsReply(d: WireDecoder): Promise<BuildPathsReply> {
  const status = await d.uint("BuildPaths status");
  if (status === 0) return { status };
  return { status, errorMsg: await d.string("BuildPaths error message") };
}

export function writeBuildPathsReply(e: WireEncoder, reply: BuildPathsReply): void {
  e.uint(reply.status, "BuildPaths status");
  if (reply.status !== 0) e.string(reply.errorMsg ?? "");
}
