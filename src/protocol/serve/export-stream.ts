// The export stream of `nix-store --export` (serve-protocol.md §5.5): the ImportPaths request
// and the ExportPaths reply. Per path: `1`, the NAR (raw), 0x4558494e, path, references,
// deriver, signature flag (+ legacy signature); then `0`. The NAR is streamed through the
// decoder by the caller's `readNar`, never buffered here.

import type { WireDecoder } from "../wire/wire-decoder.ts";
import type { WireEncoder } from "../wire/wire-encoder.ts";

/** "NIXE" read as a little-endian u64. */
export const EXPORT_MAGIC = 0x4558494e;

export interface ExportedPath {
  path: string;
  /** Full store paths, sorted. */
  references: string[];
  deriver: string | undefined;
  /** A pre-2.0 signature (flag 1); importers ignore it, kept so a stream re-encodes as read. */
  legacySignature?: string;
}

/** Before each item: true when an item follows (`1`), false at the end of the stream (`0`). */
export async function readExportItemStart(d: WireDecoder): Promise<boolean> {
  const at = d.offset;
  const marker = await d.u64("export item marker");
  if (marker === 0 || marker === 1) return marker === 1;
  throw d.fail(
    "invalid",
    "export item marker (1 = a path follows, 0 = end)",
    at,
    `got ${marker}: input doesn't look like something created by 'nix-store --export'`,
  );
}

/** After an item's NAR: magic, path, references, deriver, signature flag. */
export async function readExportItemTrailer(d: WireDecoder): Promise<ExportedPath> {
  const at = d.offset;
  const magic = await d.u64("export magic");
  if (magic !== EXPORT_MAGIC) {
    throw d.fail(
      "invalid",
      "export magic 0x4558494e after the NAR",
      at,
      `got 0x${magic.toString(16)}: Nix archive cannot be imported; wrong format`,
    );
  }
  const item: ExportedPath = {
    path: await d.storePath("exported path"),
    references: await d.storePathSet("references of the exported path"),
    deriver: await d.optionalStorePath("deriver of the exported path"),
  };
  const flagAt = d.offset;
  const signed = await d.u64("legacy signature flag");
  if (signed > 1) {
    throw d.fail("invalid", "legacy signature flag (0 or 1)", flagAt, `got ${signed}`);
  }
  if (signed === 1) item.legacySignature = await d.token("legacy signature");
  return item;
}

/**
 * Read a whole export stream. For each item `readNar` must consume exactly the NAR (for
 * instance `readNar` of wire-nar.ts with a restoring visitor); its result comes with the item.
 */
export async function* readExportStream<T>(
  d: WireDecoder,
  readNar: (d: WireDecoder) => Promise<T>,
): AsyncGenerator<{ item: ExportedPath; nar: T }, void, undefined> {
  while (await readExportItemStart(d)) {
    const nar = await readNar(d);
    yield { item: await readExportItemTrailer(d), nar };
  }
}

/** Before an item's NAR. */
export function writeExportItemStart(e: WireEncoder): void {
  e.u64(1);
}

/** After an item's NAR. */
export function writeExportItemTrailer(e: WireEncoder, item: ExportedPath): void {
  e.u64(EXPORT_MAGIC).storePath(item.path, "exported path");
  e.storePathSet(item.references, "reference").optionalStorePath(item.deriver, "deriver");
  if (item.legacySignature === undefined) e.u64(0);
  else e.u64(1).string(item.legacySignature);
}

export function writeExportEnd(e: WireEncoder): void {
  e.u64(0);
}

/** A whole export stream from items whose NARs arrive as chunks, in dependency order. */
export async function* writeExportStream(
  e: WireEncoder,
  items: Iterable<{ item: ExportedPath; nar: AsyncIterable<Uint8Array> | Iterable<Uint8Array> }>,
): AsyncGenerator<Uint8Array, void, undefined> {
  for (const { item, nar } of items) {
    writeExportItemStart(e);
    yield e.take();
    yield* nar;
    writeExportItemTrailer(e, item);
    yield e.take();
  }
  writeExportEnd(e);
  yield e.take();
}
