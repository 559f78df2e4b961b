// Writing NARs token by token, so tests can produce exactly the malformed archive they need.

import { encodeString, encodeU64 } from "../../src/io/byte-writer.ts";

/** A raw item: written as is, not as a wire string. */
export interface Raw {
  raw: Uint8Array;
}

export type NarToken = string | Uint8Array | Raw;

/** Concatenate tokens: strings and byte arrays become wire strings, `{ raw }` is copied verbatim. */
export function narBytes(tokens: NarToken[]): Buffer {
  return Buffer.concat(
    tokens.map((t) => (typeof t === "object" && "raw" in t ? t.raw : encodeString(t))),
  );
}

export const u64 = (n: number): Raw => ({ raw: encodeU64(n) });

/** Tokens of a regular file node. */
export function regular(contents: string | Uint8Array, executable = false): NarToken[] {
  return [
    "(",
    "type",
    "regular",
    ...(executable ? ["executable", ""] : []),
    "contents",
    contents,
    ")",
  ];
}

export function symlink(target: string | Uint8Array): NarToken[] {
  return ["(", "type", "symlink", "target", target, ")"];
}

/** Tokens of a directory node whose entries are given in the order to write them. */
export function directory(entries: [string | Uint8Array, NarToken[]][]): NarToken[] {
  return [
    "(",
    "type",
    "directory",
    ...entries.flatMap(([name, node]) => ["entry", "(", "name", name, "node", ...node, ")"]),
    ")",
  ];
}

/** A whole NAR with the given root node. */
export function nar(root: NarToken[]): Buffer {
  return narBytes(["nix-archive-1", ...root]);
}
