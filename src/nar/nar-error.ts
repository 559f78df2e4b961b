// Errors of the NAR layer: NarError for archives that break the format (offsets count from the
// first byte of the NAR), NarDumpError for trees that cannot be archived, NarRestoreError for
// file-system failures while unpacking a valid archive.

export type NarErrorCode =
  /** The input ended inside the archive. */
  | "truncated"
  /** The archive does not start with the string `nix-archive-1`. */
  | "bad-magic"
  /** A tag other than the one the grammar allows at this point. */
  | "unexpected-tag"
  /** Padding after a string or file contents has a non-zero byte. */
  | "bad-padding"
  /** An entry name that is empty, `.`, `..`, or contains `/` or NUL. */
  | "invalid-name"
  /** Entry names not in strictly ascending byte order. */
  | "unsorted-entries"
  /** The same entry name twice in one directory. */
  | "duplicate-entry"
  /** A symlink target that is empty or contains NUL. */
  | "invalid-symlink-target"
  /** A length (name, target, file size) above the configured limit. */
  | "too-large"
  /** Directories nested deeper than the configured limit. */
  | "too-deep"
  /** Bytes after the root node where the archive was expected to end the input. */
  | "trailing-data";

export class NarError extends Error {
  constructor(
    readonly code: NarErrorCode,
    /** Byte offset within the NAR where the offending item starts. */
    readonly offset: number,
    /** The problem without the position, e.g. `invalid file name '..'`. */
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`invalid NAR at byte ${offset}: ${problem}`, options);
    this.name = "NarError";
  }
}

/** Render raw bytes (names, tags, targets) for a message: UTF-8, control bytes escaped. */
export function quoteBytes(bytes: Uint8Array): string {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
  const escaped = text.replace(
    /[\x00-\x1f\x7f']/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
  return `'${escaped}'`;
}

/** A file tree that cannot be turned into a NAR. */
export class NarDumpError extends Error {
  constructor(
    message: string,
    /** The offending path (a Buffer: file names are bytes). */
    readonly path: Buffer,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** NARs record only regular files, symlinks and directories. */
export class UnsupportedFileTypeError extends NarDumpError {
  constructor(
    path: Buffer,
    readonly fileType: string,
  ) {
    super(
      `cannot archive ${quoteBytes(path)}: it is a ${fileType}; a NAR can only hold regular files, symlinks and directories`,
      path,
    );
  }
}

/** A file changed (shrank or was replaced) while it was being archived. */
export class FileChangedError extends NarDumpError {
  constructor(path: Buffer, detail: string) {
    super(`file ${quoteBytes(path)} changed while it was being archived: ${detail}`, path);
  }
}

/** Unpacking a (so far valid) NAR failed on the file system. */
export class NarRestoreError extends Error {
  constructor(
    message: string,
    /** The path being created when the failure happened. */
    readonly path: Buffer,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "NarRestoreError";
  }
}
