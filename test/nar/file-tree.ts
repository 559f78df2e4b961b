// An in-memory model of the file trees a NAR can hold, a fast-check generator of tricky ones, and
// writing/reading them on disk, for round-trip and differential tests.

import { createHash } from "node:crypto";
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import fc from "fast-check";

export type TreeNode =
  | { type: "regular"; executable: boolean; contents: Buffer }
  | { type: "symlink"; target: Buffer }
  | { type: "directory"; entries: TreeEntry[] };

export interface TreeEntry {
  name: Buffer;
  node: TreeNode;
}

// Names that stress sorting (case, dots, digits, UTF-8 vs. byte order), JSON and prototypes.
const TRICKY_NAMES = [
  "a",
  "A",
  "b",
  "B",
  "a.",
  ".a",
  "...",
  ".keep",
  "-",
  "a b",
  "FOO",
  "Foo",
  "foo",
  "foo-1",
  "foo0",
  "10",
  "9",
  "é",
  "e\u0301",
  "Ω",
  "日本",
  "🙂",
  "\\",
  "\"'",
  "a\nb",
  "~nix~case~hack~1",
  "__proto__",
  "constructor",
  "toString",
];

const NAME_CHARS = [
  "a",
  "A",
  "z",
  ".",
  "-",
  "_",
  "0",
  "9",
  " ",
  "é",
  "É",
  "ß",
  "🙂",
  "\t",
  "\u0001",
  "\u007f",
];

function isValidName(name: Buffer): boolean {
  const text = name.toString("latin1");
  return (
    name.length > 0 &&
    name.length <= 255 &&
    text !== "." &&
    text !== ".." &&
    !name.includes(0) &&
    !name.includes(0x2f)
  );
}

const nameArb: fc.Arbitrary<Buffer> = fc
  .oneof(
    { weight: 3, arbitrary: fc.constantFrom(...TRICKY_NAMES).map((s) => Buffer.from(s)) },
    {
      weight: 3,
      arbitrary: fc
        .array(fc.constantFrom(...NAME_CHARS), { minLength: 1, maxLength: 6 })
        .map((chars) => Buffer.from(chars.join(""))),
    },
    // Raw bytes, often not UTF-8: names are byte strings.
    {
      weight: 1,
      arbitrary: fc.uint8Array({ minLength: 1, maxLength: 6 }).map((b) => Buffer.from(b)),
    },
  )
  .filter(isValidName);

const targetArb: fc.Arbitrary<Buffer> = fc
  .oneof(
    fc
      .constantFrom(
        "../../../etc/passwd",
        "/etc/passwd",
        ".",
        "..",
        "a",
        "foo/bar",
        "/nix/store/somewhereelse",
      )
      .map((s) => Buffer.from(s)),
    fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => Buffer.from(b)),
  )
  .filter((t) => t.length > 0 && !t.includes(0));

/** Binary contents: usually small, sometimes past the dumper's 64 KiB small-file threshold. */
const contentsArb: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 8, arbitrary: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
  {
    weight: 1,
    arbitrary: fc
      .record({ size: fc.integer({ min: 64 * 1024 - 16, max: 300_000 }), seed: fc.integer() })
      .map(({ size, seed }) => pseudoRandomBytes(size, seed)),
  },
);

/** Deterministic filler for large contents (fast; fast-check would be slow byte by byte). */
function pseudoRandomBytes(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed | 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeInt32LE(x | 0, Math.min(i, size - 4));
  }
  return out;
}

export function sortEntries(entries: TreeEntry[]): TreeEntry[] {
  return [...entries].sort((a, b) => Buffer.compare(a.name, b.name));
}

export interface TreeArbOptions {
  /** Largest number of entries per directory. */
  maxEntries?: number;
  /** Allow large (> 64 KiB) files. */
  large?: boolean;
}

/** Any NAR-representable tree: the root can be a file, an executable, a symlink or a directory. */
export function treeArb(options: TreeArbOptions = {}): fc.Arbitrary<TreeNode> {
  const maxEntries = options.maxEntries ?? 5;
  const contents =
    options.large === false
      ? fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b))
      : contentsArb;
  const { node, directory } = fc.letrec<{ node: TreeNode; directory: TreeNode }>((tie) => ({
    node: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      fc.record({ type: fc.constant("regular" as const), executable: fc.boolean(), contents }),
      fc.record({ type: fc.constant("symlink" as const), target: targetArb }),
      tie("directory"),
    ),
    directory: fc
      .uniqueArray(fc.record({ name: nameArb, node: tie("node") }), {
        maxLength: maxEntries,
        selector: (e) => e.name.toString("hex"),
      })
      .map((entries) => ({ type: "directory" as const, entries: sortEntries(entries) })),
  }));
  // Mostly directories at the root: single-file NARs are simple and still come up often.
  return fc.oneof({ weight: 1, arbitrary: node }, { weight: 3, arbitrary: directory });
}

/** Create `node` at `path` (which must not exist). */
export function writeTree(path: Buffer | string, node: TreeNode): void {
  switch (node.type) {
    case "regular":
      writeFileSync(path, node.contents);
      chmodSync(path, node.executable ? 0o755 : 0o644);
      return;
    case "symlink":
      symlinkSync(node.target, path);
      return;
    case "directory": {
      mkdirSync(path);
      const base = typeof path === "string" ? Buffer.from(path) : path;
      for (const { name, node: child } of node.entries) {
        writeTree(Buffer.concat([base, Buffer.from("/"), name]), child);
      }
    }
  }
}

/** Read back what a NAR records of the tree at `path` (entries sorted by bytes). */
export function readTree(path: Buffer | string): TreeNode {
  const stats = lstatSync(path);
  if (stats.isSymbolicLink())
    return { type: "symlink", target: readlinkSync(path, { encoding: "buffer" }) };
  if (stats.isFile()) {
    return {
      type: "regular",
      executable: (stats.mode & 0o100) !== 0,
      contents: readFileSync(path),
    };
  }
  if (!stats.isDirectory()) throw new Error(`unexpected file type at ${path.toString()}`);
  const base = typeof path === "string" ? Buffer.from(path) : path;
  const names = readdirSync(path, { encoding: "buffer" });
  return {
    type: "directory",
    entries: sortEntries(
      names.map((name) => ({
        name,
        node: readTree(Buffer.concat([base, Buffer.from("/"), name])),
      })),
    ),
  };
}

/** Whether every name and symlink target in the tree is valid UTF-8 (JSON can show it exactly). */
export function isUtf8Tree(node: TreeNode): boolean {
  const utf8 = (b: Buffer) => Buffer.from(b.toString("utf8"), "utf8").equals(b);
  switch (node.type) {
    case "regular":
      return true;
    case "symlink":
      return utf8(node.target);
    case "directory":
      return node.entries.every((e) => utf8(e.name) && isUtf8Tree(e.node));
  }
}

/**
 * A plain-data summary of a tree for toEqual: vitest compares Buffers byte by byte in JS, which is
 * slow for large contents, so contents are summarised by length and sha256.
 */
export function treeSummary(node: TreeNode): unknown {
  switch (node.type) {
    case "regular":
      return {
        type: "regular",
        executable: node.executable,
        contents:
          node.contents.length <= 64
            ? node.contents.toString("hex")
            : `${node.contents.length} bytes, sha256 ${createHash("sha256").update(node.contents).digest("hex")}`,
      };
    case "symlink":
      return { type: "symlink", target: node.target.toString("hex") };
    case "directory":
      return {
        type: "directory",
        entries: node.entries.map((e) => [e.name.toString("hex"), treeSummary(e.node)]),
      };
  }
}
