// Serialising a file tree as a NAR (formats.md §6.1), streamed: small files are read straight
// into the output buffer, large ones in chunks that are handed out as they are read.
//
// File-system calls are synchronous on purpose: build outputs are mostly many small files, and an
// async call costs a thread-pool round trip per stat/open/read/close. A TimeSlicer gives the
// event loop a turn every few milliseconds so a big tree does not starve timers or child I/O.

import {
  closeSync,
  constants,
  type Dirent,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  type Stats,
} from "node:fs";
import type { Writable } from "node:stream";
import { ByteWriter } from "../io/byte-writer.ts";
import { TimeSlicer } from "../io/time-slicer.ts";
import { writeChunks } from "../io/writable-sink.ts";
import { FileChangedError, UnsupportedFileTypeError } from "./nar-error.ts";
import { NAR_RUNS } from "./nar-tokens.ts";

/** Output is handed out once this much is buffered. */
const FLUSH_AT = 64 * 1024;
/** Files up to this size are read into the output buffer in one go. */
const SMALL_FILE = 64 * 1024;
/** Larger files are read and handed out in pieces of this size. */
const READ_CHUNK = 256 * 1024;
/** The same, into one reused buffer: a pipe takes 64 KiB at a time (measured fastest). */
const REUSED_CHUNK = 64 * 1024;

const SLASH = Buffer.from("/");
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

interface OpenDirectory {
  path: Buffer;
  /** Entries in byte order of their names (Buffer.compare, as Nix sorts std::string). */
  entries: Dirent<Buffer>[];
  next: number;
}

/** What readdir says an entry is, when it says (else lstat is asked). */
type Kind = "directory" | "file" | "symlink" | undefined;

function kindOf(entry: Dirent<Buffer>): Kind {
  if (entry.isFile()) return "file";
  if (entry.isDirectory()) return "directory";
  if (entry.isSymbolicLink()) return "symlink";
  return undefined; // another type (refused below, after lstat), or the file system did not say
}

function kindOfStats(stats: Stats): Kind {
  if (stats.isDirectory()) return "directory";
  if (stats.isSymbolicLink()) return "symlink";
  if (stats.isFile()) return "file";
  return undefined;
}

const byName = (a: Dirent<Buffer>, b: Dirent<Buffer>) => Buffer.compare(a.name, b.name);

export interface DumpOptions {
  /**
   * Reuse the output buffers: each chunk is only valid until the next one is asked for. For
   * consumers done with a chunk at once (a hash, a blocking write), this spares allocating (and
   * collecting) a buffer for every chunk of the NAR.
   */
  reuseBuffers?: boolean;
  /**
   * Encode into this writer instead of a new one, and leave the archive's last bytes in it for
   * the caller to take: a series of small NARs (an export stream, a serve session's dumps) then
   * needs no buffer of its own each, and comes out as few large chunks.
   */
  writer?: ByteWriter;
}

/**
 * The NAR of the file, symlink or directory at `path`, as a stream of Buffers (each handed out
 * once and never reused, unless `reuseBuffers`). Paths are bytes: names that are not UTF-8
 * survive as they are.
 */
export async function* dumpNar(
  path: string | Buffer,
  options: DumpOptions = {},
): AsyncGenerator<Buffer, void, undefined> {
  // Small at first: most NARs a build scans are a few hundred bytes, and a buffer this size for
  // each of them was most of a 10,000-goal build's memory churn. It grows to what large ones need.
  const out = options.writer ?? new ByteWriter(4096);
  const take = options.reuseBuffers ? () => out.takeView() : () => out.take();
  let pieces: Buffer | undefined;
  const slicer = new TimeSlicer();
  const open: OpenDirectory[] = [];
  out.bytes(NAR_RUNS.magic);
  let current: Buffer | undefined = typeof path === "string" ? Buffer.from(path) : path;
  // The root's kind comes from lstat; entries' from readdir, which spares an lstat a file (the
  // opens below still refuse what changed meanwhile: O_NOFOLLOW, fstat, readdir of a non-directory).
  let kind: Kind;
  while (current !== undefined) {
    if (kind === undefined) {
      const stats = lstatSync(current);
      kind = kindOfStats(stats);
      if (kind === undefined) throw new UnsupportedFileTypeError(current, fileTypeName(stats));
    }
    if (kind === "directory") {
      out.bytes(NAR_RUNS.directory);
      const entries = readdirSync(current, { encoding: "buffer", withFileTypes: true });
      open.push({ path: current, entries: entries.sort(byName), next: 0 });
    } else {
      if (kind === "symlink") {
        const target = readlinkSync(current, { encoding: "buffer" });
        out.bytes(NAR_RUNS.symlink).string(target).bytes(NAR_RUNS.close);
      } else {
        const large = dumpRegular(current, out);
        if (large !== undefined) {
          yield take();
          if (options.reuseBuffers) pieces ??= Buffer.allocUnsafe(REUSED_CHUNK);
          yield* dumpLargeFile(large, out, slicer, pieces);
        }
      }
      if (open.length > 0) out.bytes(NAR_RUNS.close); // the entry's ")"
    }
    const next = nextEntry(open, out);
    current = next?.path;
    kind = next?.kind;
    if (out.length >= FLUSH_AT) yield take();
    if (slicer.due()) await slicer.yieldToEventLoop();
  }
  if (options.writer === undefined) yield take();
}

/** Write the next entry's header and return its path and kind; close finished directories. */
function nextEntry(
  open: OpenDirectory[],
  out: ByteWriter,
): { path: Buffer; kind: Kind } | undefined {
  while (open.length > 0) {
    const directory = open[open.length - 1]!;
    if (directory.next < directory.entries.length) {
      const entry = directory.entries[directory.next++]!;
      out.bytes(NAR_RUNS.entry).string(entry.name).bytes(NAR_RUNS.node);
      return { path: Buffer.concat([directory.path, SLASH, entry.name]), kind: kindOf(entry) };
    }
    open.pop();
    out.bytes(NAR_RUNS.close);
    if (open.length > 0) out.bytes(NAR_RUNS.close); // the entry's ")"
  }
  return undefined;
}

interface LargeFile {
  fd: number;
  path: Buffer;
  size: number;
}

/**
 * Write a regular file's node. A small file is done here, synchronously; for a large one only the
 * header is written and the still-open file is returned for `dumpLargeFile` to stream.
 */
function dumpRegular(path: Buffer, out: ByteWriter): LargeFile | undefined {
  // O_NOFOLLOW: if the file was swapped for a symlink since lstat, fail rather than follow it.
  // O_NONBLOCK: if it was swapped for a FIFO, do not hang in open.
  const fd = openSync(path, OPEN_FLAGS);
  let handedOver = false;
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new FileChangedError(path, "it is no longer a regular file");
    const size = stats.size;
    const executable = (stats.mode & 0o100) !== 0;
    out.bytes(executable ? NAR_RUNS.executable : NAR_RUNS.regular).u64(size);
    if (size > SMALL_FILE) {
      handedOver = true;
      return { fd, path, size };
    }
    readFully(fd, out.allocate(size), path, 0);
    out.padding(size).bytes(NAR_RUNS.close);
    return undefined;
  } finally {
    if (!handedOver) closeSync(fd);
  }
}

/** A large file's contents in pieces, read into `reuse` when given, else into fresh buffers. */
async function* dumpLargeFile(
  file: LargeFile,
  out: ByteWriter,
  slicer: TimeSlicer,
  reuse: Buffer | undefined,
): AsyncGenerator<Buffer, void, undefined> {
  const { fd, path, size } = file;
  try {
    for (let done = 0; done < size; ) {
      const n = Math.min(reuse?.length ?? READ_CHUNK, size - done);
      const piece = reuse ? reuse.subarray(0, n) : Buffer.allocUnsafe(n);
      readFully(fd, piece, path, done);
      done += piece.length;
      yield piece;
      if (slicer.due()) await slicer.yieldToEventLoop();
    }
    out.padding(size).bytes(NAR_RUNS.close);
  } finally {
    closeSync(fd);
  }
}

function readFully(fd: number, into: Buffer, path: Buffer, fileOffset: number): void {
  for (let filled = 0; filled < into.length; ) {
    const n = readSync(fd, into, filled, into.length - filled, null);
    if (n === 0) {
      throw new FileChangedError(
        path,
        `it ended after ${fileOffset + filled} bytes, before the size it had when opened`,
      );
    }
    filled += n;
  }
}

function fileTypeName(stats: Stats): string {
  if (stats.isSocket()) return "socket";
  if (stats.isFIFO()) return "FIFO (named pipe)";
  if (stats.isCharacterDevice()) return "character device";
  if (stats.isBlockDevice()) return "block device";
  return "file of unknown type";
}

/** Dump `path` as a NAR into `output` with backpressure (the stream is not ended); returns the size. */
export function writeNar(path: string | Buffer, output: Writable): Promise<number> {
  return writeChunks(dumpNar(path), output);
}

/**
 * The NAR of a single regular file held in memory (for `nixstate hash` and recursive hashing of
 * flat inputs), as three pieces — header, the contents themselves (not copied), trailer — that
 * concatenate to the NAR.
 */
export function regularFileNar(contents: Uint8Array, executable = false): Buffer[] {
  const header = new ByteWriter(0)
    .bytes(NAR_RUNS.magic)
    .bytes(executable ? NAR_RUNS.executable : NAR_RUNS.regular)
    .u64(contents.length)
    .take();
  const trailer = new ByteWriter(0).padding(contents.length).bytes(NAR_RUNS.close).take();
  const body = Buffer.from(contents.buffer, contents.byteOffset, contents.byteLength);
  return [header, body, trailer];
}
