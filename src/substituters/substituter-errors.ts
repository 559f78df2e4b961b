// Errors of substituters and binary-cache folders. Each names the cache and path involved and what
// the user can do about it.

/** Base class: a substituter that cannot deliver what it was asked for. */
export class SubstituterError extends Error {
  override name = "SubstituterError";
}

/** A `.narinfo` file that does not follow Nix's format. */
export class NarInfoError extends SubstituterError {
  override name = "NarInfoError";
  constructor(
    readonly whence: string,
    readonly reason: string,
  ) {
    super(`NAR info file '${whence}' is corrupt: ${reason}`);
  }
}

/** A NAR stored compressed; only uncompressed NARs can be read for now. */
export class UnsupportedCompressionError extends SubstituterError {
  override name = "UnsupportedCompressionError";
  constructor(
    readonly path: string,
    readonly compression: string,
    readonly cache: string,
  ) {
    super(
      `the NAR of '${path}' in '${cache}' is compressed with '${compression}', but only uncompressed NARs ('Compression: none') are supported; write the cache with 'nix copy --to "file://…?compression=none"'`,
    );
  }
}

/** The cache lists a path but its NAR file is missing (Nix's SubstituteGone): try elsewhere. */
export class SubstituteGoneError extends SubstituterError {
  override name = "SubstituteGoneError";
  constructor(
    readonly path: string,
    readonly file: string,
  ) {
    super(`the NAR of '${path}' is listed but missing at '${file}'`);
  }
}

/** A binary cache made for another store directory: its paths cannot be ours. */
export class ForeignCacheError extends SubstituterError {
  override name = "ForeignCacheError";
  constructor(
    readonly cache: string,
    readonly cacheStoreDir: string,
    readonly storeDir: string,
  ) {
    super(
      `binary cache '${cache}' is for Nix stores with prefix '${cacheStoreDir}', not '${storeDir}'; use a cache written for this store directory`,
    );
  }
}

/** A substituter location that does not exist or is not of a supported kind. */
export class SubstituterLocationError extends SubstituterError {
  override name = "SubstituterLocationError";
}
