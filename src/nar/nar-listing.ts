// Nix's NAR listing (the `.ls` files of binary caches, `nix ls-store --json`): the tree of a NAR
// with sizes and the offset of each file's contents, computed from the NAR stream without
// keeping contents.

import { ByteReader, type ByteSource } from "../io/byte-reader.ts";
import { NarError } from "./nar-error.ts";
import { type NarLimits, type NarNode, parseNar } from "./nar-parse.ts";

export type NarListingNode = NarListingRegular | NarListingSymlink | NarListingDirectory;

export interface NarListingRegular {
  type: "regular";
  size: number;
  /** Present (and true) only for executable files, as in Nix. */
  executable?: true;
  /** Offset of the file's contents within the NAR. */
  narOffset: number;
}

export interface NarListingSymlink {
  type: "symlink";
  target: string;
}

export interface NarListingDirectory {
  type: "directory";
  /**
   * Entries by name. A null-prototype object (a name like `__proto__` is just a name). Names and
   * targets are decoded as UTF-8; bytes that are not UTF-8 become U+FFFD, as in Nix's JSON.
   */
  entries: Record<string, NarListingNode>;
}

export interface NarListing {
  version: 1;
  root: NarListingNode;
}

/**
 * The listing of the NAR read from `source`. A ByteReader is left right after the NAR; any other
 * source must contain exactly one NAR.
 */
export async function narListing(
  source: ByteReader | ByteSource,
  limits: NarLimits = {},
): Promise<NarListing> {
  const ownReader = !(source instanceof ByteReader);
  const reader = ownReader ? new ByteReader(source) : source;
  // entries[d] holds the entries of the open directory at depth d.
  const entries: Record<string, NarListingNode>[] = [];
  let root: NarListingNode | undefined;
  const place = (node: NarNode, listed: NarListingNode) => {
    if (node.depth === 0) root = listed;
    else entries[node.depth - 1]![node.name!.toString("utf8")] = listed;
  };
  const narSize = await parseNar(
    reader,
    {
      regular(node) {
        // Key order as Nix writes it: type, size, executable, narOffset.
        const listed: NarListingRegular = node.executable
          ? { type: "regular", size: node.size, executable: true, narOffset: node.narOffset }
          : { type: "regular", size: node.size, narOffset: node.narOffset };
        place(node, listed);
      },
      symlink(node) {
        place(node, { type: "symlink", target: node.target.toString("utf8") });
      },
      directory(node) {
        const directory: NarListingDirectory = { type: "directory", entries: Object.create(null) };
        place(node, directory);
        entries[node.depth] = directory.entries;
        entries.length = node.depth + 1;
      },
    },
    limits,
  );
  if (ownReader && !(await reader.atEnd())) {
    throw new NarError("trailing-data", narSize, "unexpected data after the end of the NAR");
  }
  return { version: 1, root: root! };
}

/**
 * The listing as JSON text in Nix 2.8's layout: keys in the order Nix writes them, entries in
 * byte order of their names (JSON.stringify would put integer-like names such as "10" first) and
 * Nix's string escapes. For UTF-8 names and targets the text is byte-identical to Nix's.
 */
export function renderNarListing(listing: NarListing): string {
  return `{"version":${listing.version},"root":${renderNode(listing.root)}}`;
}

function renderNode(node: NarListingNode): string {
  switch (node.type) {
    case "regular":
      return `{"type":"regular","size":${node.size}${node.executable ? ',"executable":true' : ""},"narOffset":${node.narOffset}}`;
    case "symlink":
      return `{"type":"symlink","target":${jsonString(node.target)}}`;
    case "directory": {
      const names = Object.keys(node.entries)
        .map((name) => ({ name, bytes: Buffer.from(name, "utf8") }))
        .sort((a, b) => Buffer.compare(a.bytes, b.bytes));
      const parts = names.map(
        ({ name }) => `${jsonString(name)}:${renderNode(node.entries[name]!)}`,
      );
      return `{"type":"directory","entries":{${parts.join(",")}}}`;
    }
  }
}

/** A JSON string as Nix writes it: \" \\ \n \r \t, other control characters as \u00xx. */
function jsonString(text: string): string {
  const escaped = text.replace(/["\\\x00-\x1f]/g, (c) => {
    switch (c) {
      case '"':
        return '\\"';
      case "\\":
        return "\\\\";
      case "\n":
        return "\\n";
      case "\r":
        return "\\r";
      case "\t":
        return "\\t";
      default:
        return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
    }
  });
  return `"${escaped}"`;
}
