// Summaries of NARs read off a protocol stream, in the shape of the session annotations
// (vectors README §2): a tree of nodes, the NAR's size and its sha256 in nix32.

import { createHash } from "node:crypto";
import { nix32Encode } from "../../src/hash/nix32.ts";
import type { NarVisitor } from "../../src/nar/nar-parse.ts";
import type { WireDecoder } from "../../src/protocol/wire/wire-decoder.ts";
import { readNar, readSizedNar } from "../../src/protocol/wire/wire-nar.ts";

export type NarTree =
  | { type: "regular"; executable?: true; size: number; contents: string }
  | { type: "symlink"; target: string }
  | { type: "directory"; entries: Record<string, NarTree> };

export interface NarSummary {
  narBytes: number;
  narSha256Nix32: string;
  tree: NarTree;
  /** The archive itself, to re-encode the message around it. */
  bytes: Buffer;
}

function treeVisitor(): { visitor: NarVisitor; root: () => NarTree } {
  let root: NarTree | undefined;
  const open: Extract<NarTree, { type: "directory" }>[] = [];
  const attach = (name: Buffer | undefined, node: NarTree) => {
    if (name === undefined) root = node;
    else open[open.length - 1]!.entries[name.toString("utf8")] = node;
  };
  const visitor: NarVisitor = {
    async regular(node, contents) {
      const parts: Buffer[] = [];
      for await (const c of contents) parts.push(Buffer.from(c));
      attach(node.name, {
        type: "regular",
        ...(node.executable ? { executable: true as const } : {}),
        size: node.size,
        contents: Buffer.concat(parts).toString("utf8"),
      });
    },
    symlink(node) {
      attach(node.name, { type: "symlink", target: node.target.toString("utf8") });
    },
    directory(node) {
      const dir: NarTree = { type: "directory", entries: {} };
      attach(node.name, dir);
      open.push(dir);
    },
    directoryEnd() {
      open.pop();
    },
  };
  return { visitor, root: () => root! };
}

async function summarise(d: WireDecoder, parse: (v: NarVisitor) => Promise<unknown>) {
  const parts: Buffer[] = [];
  const previous = d.reader.tap;
  d.reader.tap = (b) => parts.push(Buffer.from(b));
  const { visitor, root } = treeVisitor();
  try {
    await parse(visitor);
  } finally {
    d.reader.tap = previous;
  }
  const bytes = Buffer.concat(parts);
  return {
    narBytes: bytes.length,
    narSha256Nix32: nix32Encode(createHash("sha256").update(bytes).digest()),
    tree: root(),
    bytes,
  };
}

/** Read the raw NAR that follows (DumpStorePath, export streams). */
export function summariseNar(d: WireDecoder): Promise<NarSummary> {
  return summarise(d, (v) => readNar(d, v));
}

/** Read a NAR of announced size (AddToStoreNar). */
export function summariseSizedNar(d: WireDecoder, size: number): Promise<NarSummary> {
  return summarise(d, (v) => readSizedNar(d, size, v));
}
