// Errors of the local store. Each names the path involved and what the user can do about it.

/** Base class: anything the store refuses or cannot do. */
export class StoreError extends Error {
  override name = "StoreError";
}

/** A well-formed store path that is not valid (not registered) in this store. */
export class InvalidPathError extends StoreError {
  override name = "InvalidPathError";
  constructor(readonly path: string) {
    super(`path '${path}' is not valid in this store (add or import it first)`);
  }
}

/** A registration whose references are neither valid nor part of the same batch. */
export class DanglingReferenceError extends StoreError {
  override name = "DanglingReferenceError";
  constructor(
    readonly path: string,
    readonly reference: string,
  ) {
    super(
      `cannot register '${path}': it references '${reference}', which is not valid; register or import the reference first (or in the same batch)`,
    );
  }
}

/** Registration of a path whose contents are not in the store directory. */
export class MissingContentsError extends StoreError {
  override name = "MissingContentsError";
  constructor(
    readonly path: string,
    readonly physicalPath: string,
  ) {
    super(
      `cannot register '${path}': its contents are missing at '${physicalPath}'; write them before registering`,
    );
  }
}

/** A path that cannot be deleted because something still needs it. */
export class PathInUseError extends StoreError {
  override name = "PathInUseError";
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`cannot delete '${path}': ${reason}`);
  }
}

/** Imported contents that do not match the NAR hash or size they were announced with. */
export class NarHashMismatchError extends StoreError {
  override name = "NarHashMismatchError";
  constructor(
    readonly path: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(
      `NAR of '${path}' does not match its path info: expected ${expected}, got ${actual}; the source is corrupt or the path info is wrong`,
    );
  }
}

/** A lock that was not obtained within the time allowed. */
export class LockTimeoutError extends StoreError {
  override name = "LockTimeoutError";
  constructor(
    readonly paths: readonly string[],
    readonly timeoutMs: number,
    readonly holder: string | undefined,
  ) {
    super(
      `timed out after ${timeoutMs} ms waiting for the lock on '${paths.join("', '")}'${holder ? ` (held by ${holder})` : ""}; is another build of it stuck?`,
    );
  }
}

/** A reference graph that has a cycle (other than self-references), so it cannot be sorted. */
export class ReferenceCycleError extends StoreError {
  override name = "ReferenceCycleError";
  constructor(readonly cycle: readonly string[]) {
    super(`cycle in the references of store paths: ${cycle.join(" -> ")}`);
  }
}

/** A database written by a newer nixstate, or one that cannot be opened. */
export class StoreDatabaseError extends StoreError {
  override name = "StoreDatabaseError";
}

/** Input in the `nix-store --export` format that is malformed. */
export class ExportFormatError extends StoreError {
  override name = "ExportFormatError";
}

/** Importing from a Nix store that does not match this store (another store directory…). */
export class ForeignStoreError extends StoreError {
  override name = "ForeignStoreError";
}

/** A state or store directory that cannot hold a store (`/`, inside /proc or /sys). */
export class UnusableDirectoryError extends StoreError {
  override name = "UnusableDirectoryError";
}

/** Contents that do not match the content address they were sent with (Nix 2.8's words). */
export class ContentAddressMismatchError extends StoreError {
  override name = "ContentAddressMismatchError";
  constructor(
    readonly path: string,
    readonly specified: string,
    readonly got: string,
  ) {
    super(
      `ca hash mismatch importing path '${path}';\n  specified: ${specified}\n  got:       ${got}`,
    );
  }
}
