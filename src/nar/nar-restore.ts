// Unpacking a NAR into a new path, safely: the parser has already refused names that could
// escape (`..`, `/`, NUL, duplicates), every directory on the way is one this restore created
// (mkdir fails on anything that exists), and files, links and directories are all created
// exclusively (O_CREAT|O_EXCL, symlink, mkdir never reuse or follow an existing path). So no path
// used here passes through a symlink from the archive, and nothing is written outside `target`.
//
// File-system calls are synchronous for speed (many small files); see nar-dump.ts.

import { createHash, type Hash } from "node:crypto";
import { closeSync, constants, mkdirSync, openSync, symlinkSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import { ByteReader, type ByteSource } from "../io/byte-reader.ts";
import { deleteTree } from "../io/delete-tree.ts";
import { TimeSlicer } from "../io/time-slicer.ts";
import { NarError, NarRestoreError, quoteBytes } from "./nar-error.ts";
import {
  type NarLimits,
  type NarNode,
  type NarRegularNode,
  type NarSymlinkNode,
  type NarVisitor,
  parseNar,
} from "./nar-parse.ts";

export interface RestoreOptions extends NarLimits {
  /** Also hash the NAR bytes while restoring (node:crypto name, e.g. "sha256"). */
  hashAlgorithm?: string;
  /** Keep what was created when restoring fails (default: remove it). */
  keepPartial?: boolean;
}

export interface RestoreResult {
  /** Bytes of the NAR. */
  narSize: number;
  /** Digest of the NAR bytes, when `hashAlgorithm` was given. */
  narHash?: Buffer;
}

const SLASH = Buffer.from("/");
const FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * Restore the NAR read from `source` at `target`, which must not exist (its parent must). Given a
 * ByteReader, stops right after the NAR and leaves the following bytes in it; given a plain byte
 * source, the NAR must be all of it. Throws NarError for a malformed archive and
 * NarRestoreError when the file system refuses; either way the partial tree is removed.
 */
export async function restoreNar(
  source: ByteReader | ByteSource,
  target: string,
  options: RestoreOptions = {},
): Promise<RestoreResult> {
  const ownReader = !(source instanceof ByteReader);
  const reader = ownReader ? new ByteReader(source) : source;
  const restorer = new Restorer(Buffer.from(resolve(target)));
  let hash: Hash | undefined;
  const previousTap = reader.tap;
  if (options.hashAlgorithm !== undefined) {
    const h = createHash(options.hashAlgorithm);
    hash = h;
    reader.tap = previousTap
      ? (bytes) => {
          previousTap(bytes);
          h.update(bytes);
        }
      : (bytes) => h.update(bytes);
  }
  try {
    const narSize = await parseNar(reader, restorer, options);
    if (ownReader && !(await reader.atEnd())) {
      throw new NarError("trailing-data", narSize, "unexpected data after the end of the NAR");
    }
    return hash ? { narSize, narHash: hash.digest() } : { narSize };
  } catch (error) {
    if (restorer.createdRoot && !options.keepPartial) {
      // The NAR's own error is the one to report; a failing clean-up must not hide it.
      try {
        deleteTree(restorer.root);
      } catch {}
    }
    throw error;
  } finally {
    reader.tap = previousTap;
  }
}

class Restorer implements NarVisitor {
  readonly root: Buffer;
  createdRoot = false;
  /** directories[d] is the path of the open directory at depth d. */
  readonly #directories: Buffer[] = [];
  readonly #slicer = new TimeSlicer();

  constructor(root: Buffer) {
    this.root = root;
  }

  async directory(node: NarNode): Promise<void> {
    const path = this.#pathOf(node);
    this.#create(path, () => mkdirSync(path, 0o777));
    this.#directories[node.depth] = path;
    this.#directories.length = node.depth + 1;
    if (this.#slicer.due()) await this.#slicer.yieldToEventLoop();
  }

  symlink(node: NarSymlinkNode): void {
    const path = this.#pathOf(node);
    this.#create(path, () => symlinkSync(node.target, path));
  }

  async regular(
    node: NarRegularNode,
    contents: AsyncIterable<Buffer> | Iterable<Buffer>,
  ): Promise<void> {
    const path = this.#pathOf(node);
    // Like Nix: rw for everyone, plus x for everyone if executable, both minus the umask.
    const mode = node.executable ? 0o777 : 0o666;
    const fd = this.#create(path, () => openSync(path, FILE_FLAGS, mode));
    try {
      if (Array.isArray(contents)) for (const chunk of contents) this.#write(fd, path, chunk);
      else for await (const chunk of contents) this.#write(fd, path, chunk);
    } finally {
      closeSync(fd);
    }
    if (this.#slicer.due()) await this.#slicer.yieldToEventLoop();
  }

  #write(fd: number, path: Buffer, chunk: Buffer): void {
    for (let written = 0; written < chunk.length; ) {
      written += this.#fs(path, () => writeSync(fd, chunk, written, chunk.length - written));
    }
  }

  #pathOf(node: NarNode): Buffer {
    if (node.depth === 0) return this.root;
    return Buffer.concat([this.#directories[node.depth - 1]!, SLASH, node.name!]);
  }

  /** Create the node at `path`; at the root, note that there is now something to clean up. */
  #create<T>(path: Buffer, create: () => T): T {
    const isRoot = path === this.root;
    try {
      const result = create();
      if (isRoot) this.createdRoot = true;
      return result;
    } catch (error) {
      if (isRoot && (error as NodeJS.ErrnoException).code === "EEXIST") {
        throw new NarRestoreError(
          `cannot restore NAR to ${quoteBytes(path)}: it already exists (the target must be a new path)`,
          path,
          { cause: error },
        );
      }
      throw this.#restoreError(path, error);
    }
  }

  #fs<T>(path: Buffer, call: () => T): T {
    try {
      return call();
    } catch (error) {
      throw this.#restoreError(path, error);
    }
  }

  #restoreError(path: Buffer, error: unknown): NarRestoreError {
    const message = error instanceof Error ? error.message : String(error);
    return new NarRestoreError(
      `cannot restore NAR: creating ${quoteBytes(path)} failed: ${message}`,
      path,
      {
        cause: error,
      },
    );
  }
}
