// The fixed strings of the NAR grammar (formats.md §6.1), and runs of them pre-encoded in wire
// form so the dumper writes each run with one copy.

import { ByteWriter } from "../io/byte-writer.ts";

export const NAR_MAGIC = "nix-archive-1";

function encode(...strings: string[]): Buffer {
  const writer = new ByteWriter(0);
  for (const s of strings) writer.string(s);
  return writer.take();
}

export const NAR_RUNS = {
  magic: encode(NAR_MAGIC),
  regular: encode("(", "type", "regular", "contents"),
  executable: encode("(", "type", "regular", "executable", "", "contents"),
  symlink: encode("(", "type", "symlink", "target"),
  directory: encode("(", "type", "directory"),
  entry: encode("entry", "(", "name"),
  node: encode("node"),
  close: encode(")"),
} as const;
