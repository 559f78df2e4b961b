// The one NAR parser: a strict, streaming reader of the grammar in formats.md §6 that reports
// nodes to a visitor. Restore, listing and validation all go through it, so hostile input is
// refused the same way everywhere. It keeps no per-file state beyond one name per open
// directory, streams file contents (never buffering them), and stops exactly after the root
// node: the bytes behind it stay in the reader.

import type { ByteReader } from "../io/byte-reader.ts";
import {
  ByteReadError,
  NonZeroPaddingError,
  UnexpectedEndError,
  ValueTooLargeError,
} from "../io/read-errors.ts";
import { NarError, quoteBytes } from "./nar-error.ts";
import { NAR_MAGIC } from "./nar-tokens.ts";

/** Limits that keep hostile lengths from allocating memory; all generous for real trees. */
export interface NarLimits {
  /** Longest entry name in bytes (default 4096; Linux itself allows 255). */
  maxNameLength?: number;
  /** Longest symlink target in bytes (default 65536; Linux allows 4095). */
  maxTargetLength?: number;
  /** Largest regular file in bytes (default 2^53 - 1; contents are streamed, never held). */
  maxFileSize?: number;
  /** Deepest node (the root's entries are at depth 1; default 2048, beyond what PATH_MAX lets Nix dump). */
  maxDepth?: number;
}

export const DEFAULT_NAR_LIMITS: Required<NarLimits> = {
  maxNameLength: 4096,
  maxTargetLength: 65536,
  maxFileSize: Number.MAX_SAFE_INTEGER,
  maxDepth: 2048,
};

/** Where a node sits: the root has depth 0 and no name. */
export interface NarNode {
  /** The entry name (raw bytes), undefined for the root. */
  name: Buffer | undefined;
  depth: number;
}

export interface NarRegularNode extends NarNode {
  executable: boolean;
  size: number;
  /** Offset of the first contents byte within the NAR (as in Nix's `.ls` listings). */
  narOffset: number;
}

export interface NarSymlinkNode extends NarNode {
  target: Buffer;
}

/**
 * Receives the nodes in archive order: a directory's entries arrive between its `directory` and
 * `directoryEnd` calls, in ascending name order. Every method may be async; the parser waits.
 */
export interface NarVisitor {
  /**
   * A regular file. `contents` streams its bytes (views into the reader's chunks; copy what must
   * outlive the call). Read it within this call or not at all: the parser skips unread bytes.
   */
  regular?(
    node: NarRegularNode,
    contents: AsyncIterable<Buffer> | Iterable<Buffer>,
  ): void | Promise<void>;
  symlink?(node: NarSymlinkNode): void | Promise<void>;
  directory?(node: NarNode): void | Promise<void>;
  directoryEnd?(node: NarNode): void | Promise<void>;
}

// Longer than any tag of the grammar; a longer string is reported without being read.
const MAX_TAG_LENGTH = 64;

interface OpenDirectory {
  node: NarNode;
  /** The last entry name seen, to check ascending order. */
  previous: Buffer | undefined;
}

/**
 * Parse one NAR from `reader`, reporting its nodes to `visitor`, and return the NAR's size in
 * bytes. The reader is left right after the root node. Throws NarError for anything that is not
 * a well-formed NAR (including truncation); errors thrown by the visitor pass through unchanged.
 */
export async function parseNar(
  reader: ByteReader,
  visitor: NarVisitor = {},
  limits: NarLimits = {},
): Promise<number> {
  return new NarParser(reader, visitor, { ...DEFAULT_NAR_LIMITS, ...limits }).parse();
}

class NarParser {
  readonly #reader: ByteReader;
  readonly #visitor: NarVisitor;
  readonly #limits: Required<NarLimits>;
  /** Reader offset of the NAR's first byte: all reported offsets are relative to it. */
  readonly #base: number;

  constructor(reader: ByteReader, visitor: NarVisitor, limits: Required<NarLimits>) {
    this.#reader = reader;
    this.#visitor = visitor;
    this.#limits = limits;
    this.#base = reader.offset;
  }

  async parse(): Promise<number> {
    try {
      const start = this.#here();
      const magic = await this.#readTag("the NAR magic 'nix-archive-1'", "bad-magic");
      if (magic !== NAR_MAGIC) {
        throw new NarError(
          "bad-magic",
          start,
          `not a NAR: expected 'nix-archive-1', got ${show(magic)}`,
        );
      }
      await this.#parseTree();
      return this.#here();
    } catch (error) {
      throw this.#asNarError(error);
    }
  }

  async #parseTree(): Promise<void> {
    const open: OpenDirectory[] = [];
    let name: Buffer | undefined;
    for (;;) {
      const isDirectory = await this.#parseNode({ name, depth: open.length }, open);
      // A finished leaf inside a directory still has its entry's ")" to close.
      let closeEntry = !isDirectory && open.length > 0;
      name = undefined;
      while (open.length > 0) {
        if (closeEntry) {
          await this.#expectTag(")", "')' closing the directory entry");
          closeEntry = false;
        }
        const directory = open[open.length - 1]!;
        const tagStart = this.#here();
        const tag = this.#tagNow() ?? (await this.#readTag("'entry' or ')'"));
        if (tag === ")") {
          await this.#visitor.directoryEnd?.(directory.node);
          open.pop();
          closeEntry = open.length > 0;
          continue;
        }
        if (tag !== "entry") throw this.#unexpected(tagStart, "'entry' or ')'", tag);
        name = await this.#parseEntryHeader(directory);
        if (open.length > this.#limits.maxDepth) {
          throw new NarError(
            "too-deep",
            tagStart,
            `directories nested more than ${this.#limits.maxDepth} levels deep`,
          );
        }
        break;
      }
      if (name === undefined) return;
    }
  }

  /** `"(" "name" <name> "node"` of an entry; checks the name and its order. */
  async #parseEntryHeader(directory: OpenDirectory): Promise<Buffer> {
    await this.#expectTag("(", "'(' opening the directory entry");
    const tagStart = this.#here();
    const tag = this.#tagNow() ?? (await this.#readTag("'name'"));
    if (tag === "node") {
      throw new NarError("unexpected-tag", tagStart, "directory entry has 'node' before 'name'");
    }
    if (tag !== "name") throw this.#unexpected(tagStart, "'name'", tag);
    const nameStart = this.#here();
    const maxName = this.#limits.maxNameLength;
    const name =
      this.#reader.tryReadString(maxName) ?? (await this.#reader.readString(maxName, "entry name"));
    checkName(name, nameStart);
    const previous = directory.previous;
    if (previous !== undefined) {
      const order = Buffer.compare(previous, name);
      if (order === 0) {
        throw new NarError(
          "duplicate-entry",
          nameStart,
          `duplicate entry name ${quoteBytes(name)}`,
        );
      }
      if (order > 0) {
        throw new NarError(
          "unsorted-entries",
          nameStart,
          `entry names not sorted: ${quoteBytes(name)} comes after ${quoteBytes(previous)}`,
        );
      }
    }
    directory.previous = name;
    await this.#expectTag("node", "'node'");
    return name;
  }

  /** One node. Leaves are read completely; a directory is opened (pushed on `open`). */
  async #parseNode(node: NarNode, open: OpenDirectory[]): Promise<boolean> {
    await this.#expectTag("(", "'(' opening a node");
    await this.#expectTag("type", "'type'");
    const typeStart = this.#here();
    const type = this.#tagNow() ?? (await this.#readTag("a node type"));
    switch (type) {
      case "regular":
        await this.#parseRegular(node);
        return false;
      case "symlink":
        await this.#parseSymlink(node);
        return false;
      case "directory":
        await this.#visitor.directory?.(node);
        open.push({ node, previous: undefined });
        return true;
      default:
        throw new NarError(
          "unexpected-tag",
          typeStart,
          `unknown node type ${show(type)} (expected 'regular', 'symlink' or 'directory')`,
        );
    }
  }

  async #parseRegular(node: NarNode): Promise<void> {
    const reader = this.#reader;
    let tagStart = this.#here();
    let tag = this.#tagNow() ?? (await this.#readTag("'executable' or 'contents'"));
    let executable = false;
    if (tag === "executable") {
      const markerStart = this.#here();
      const marker = await this.#readTag("the empty 'executable' marker");
      if (marker !== "") {
        throw new NarError(
          "unexpected-tag",
          markerStart,
          "executable marker has a non-empty value",
        );
      }
      executable = true;
      tagStart = this.#here();
      tag = await this.#readTag("'contents'");
    }
    if (tag !== "contents") {
      throw this.#unexpected(
        tagStart,
        executable ? "'contents'" : "'executable' or 'contents'",
        tag,
      );
    }
    const size = await reader.readU64(this.#limits.maxFileSize, "file size");
    const contentsStart = reader.offset;
    const what = "file contents";
    const visit = this.#visitor.regular;
    if (visit !== undefined) {
      const file = { ...node, executable, size, narOffset: contentsStart - this.#base };
      // Most files lie in the chunk at hand: one view of them, without a generator.
      const whole = reader.tryReadView(size);
      const contents = whole === undefined ? reader.readChunks(size, what) : size ? [whole] : [];
      await visit.call(this.#visitor, file, contents);
    }
    const unread = contentsStart + size - reader.offset;
    if (unread > 0 && reader.tryReadView(unread) === undefined) await reader.skip(unread, what);
    if (!reader.tryReadPadding(size)) await reader.readPadding(size, what);
    const closeStart = this.#here();
    const close = this.#tagNow() ?? (await this.#readTag("')' closing the file"));
    if (close === "executable") {
      throw new NarError("unexpected-tag", closeStart, "'executable' after 'contents'");
    }
    if (close !== ")") throw this.#unexpected(closeStart, "')' closing the file", close);
  }

  async #parseSymlink(node: NarNode): Promise<void> {
    await this.#expectTag("target", "'target'");
    const targetStart = this.#here();
    const target = await this.#reader.readString(this.#limits.maxTargetLength, "symlink target");
    if (target.length === 0 || target.includes(0)) {
      throw new NarError(
        "invalid-symlink-target",
        targetStart,
        `invalid symlink target ${quoteBytes(target)} (empty or containing NUL)`,
      );
    }
    await this.#visitor.symlink?.({ ...node, target });
    await this.#expectTag(")", "')' closing the symlink");
  }

  #here(): number {
    return this.#reader.offset - this.#base;
  }

  /** A short string of the grammar, decoded as latin1 (every byte maps to one char). */
  async #readTag(expected: string, code: "unexpected-tag" | "bad-magic" = "unexpected-tag") {
    const now = this.#tagNow();
    if (now !== undefined) return now;
    try {
      const bytes = await this.#reader.readString(MAX_TAG_LENGTH, expected);
      return bytes.toString("latin1");
    } catch (error) {
      if (!(error instanceof ValueTooLargeError)) throw error;
      throw new NarError(
        code,
        error.offset - this.#base,
        `expected ${expected}, got a string of ${error.value} bytes`,
        { cause: error },
      );
    }
  }

  /** The next tag when it is already buffered (no await), decoded; else undefined. */
  #tagNow(): string | undefined {
    return this.#reader.tryReadString(MAX_TAG_LENGTH, true)?.toString("latin1");
  }

  /** Resolves (or, when the tag was buffered, returns) once `tag` was read; else throws. */
  #expectTag(tag: string, expected: string): Promise<void> | undefined {
    const start = this.#here();
    const now = this.#tagNow();
    if (now === undefined) return this.#expectTagLater(tag, expected, start);
    if (now !== tag) throw this.#unexpected(start, expected, now);
    return undefined;
  }

  async #expectTagLater(tag: string, expected: string, start: number): Promise<void> {
    const got = await this.#readTag(expected);
    if (got !== tag) throw this.#unexpected(start, expected, got);
  }

  #unexpected(offset: number, expected: string, got: string): NarError {
    return new NarError("unexpected-tag", offset, `expected ${expected}, got ${show(got)}`);
  }

  /** Reader errors become NarErrors with NAR-relative offsets; anything else passes through. */
  #asNarError(error: unknown): unknown {
    if (!(error instanceof ByteReadError)) return error;
    const at = error.offset - this.#base;
    if (error instanceof UnexpectedEndError) {
      return new NarError(
        "truncated",
        at,
        `truncated: the input ends at byte ${error.endOffset - this.#base}, ` +
          `${error.missing} byte${error.missing === 1 ? "" : "s"} short of the ${error.expected}`,
        { cause: error },
      );
    }
    if (error instanceof ValueTooLargeError) {
      return new NarError(
        "too-large",
        at,
        `${error.expected} is ${error.value}, more than the limit of ${error.limit}`,
        { cause: error },
      );
    }
    if (error instanceof NonZeroPaddingError) {
      return new NarError("bad-padding", at, `non-zero padding after ${error.expected}`, {
        cause: error,
      });
    }
    return new NarError("unexpected-tag", at, error.message, { cause: error });
  }
}

function show(tag: string): string {
  return quoteBytes(Buffer.from(tag, "latin1"));
}

const DOT = 0x2e;
const SLASH = 0x2f;

function checkName(name: Buffer, offset: number): void {
  const n = name.length;
  const dots = (n === 1 && name[0] === DOT) || (n === 2 && name[0] === DOT && name[1] === DOT);
  if (n === 0 || dots || name.includes(SLASH) || name.includes(0)) {
    throw new NarError("invalid-name", offset, `invalid file name ${quoteBytes(name)}`);
  }
}
