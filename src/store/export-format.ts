// The `nix-store --export` stream (formats.md §7, serve-protocol.md §5.5): for each path,
// dependencies first, `1`, the NAR, 0x4558494e, path, references, deriver, signature flag; then
// `0`. Importers compute NAR hash and size themselves.

import type { ByteReader } from "../io/byte-reader.ts";
import { ByteWriter } from "../io/byte-writer.ts";
import { ByteReadError } from "../io/read-errors.ts";
import { dumpNar } from "../nar/nar-dump.ts";
import { ExportFormatError } from "./store-errors.ts";

export const EXPORT_MAGIC = 0x4558494e;

/** Store paths are far shorter; this only keeps a hostile length from allocating memory. */
const MAX_PATH_LENGTH = 4096;
const MAX_REFERENCES = 1 << 20;
const MAX_SIGNATURE_LENGTH = 1 << 16;

export interface ExportedPathMeta {
  path: string;
  references: string[];
  deriver: string | undefined;
}

/**
 * Read an export stream. For each item `readNar` must consume exactly the NAR from the reader
 * (e.g. by restoring it); its result is yielded with the metadata that follows the NAR.
 */
export async function* readExport<T>(
  reader: ByteReader,
  readNar: (reader: ByteReader) => Promise<T>,
): AsyncGenerator<{ meta: ExportedPathMeta; nar: T }, void, undefined> {
  for (;;) {
    const at = reader.offset;
    const next = await wire(() => reader.readU64(Number.MAX_SAFE_INTEGER, "export item marker"));
    if (next === 0) return;
    if (next !== 1) {
      throw new ExportFormatError(
        `input doesn't look like something created by 'nix-store --export' (item marker ${next} at byte ${at}, expected 0 or 1)`,
      );
    }
    const nar = await readNar(reader);
    const magic = await wire(() => reader.readU64(Number.MAX_SAFE_INTEGER, "export magic"));
    if (magic !== EXPORT_MAGIC) {
      throw new ExportFormatError(
        `Nix archive cannot be imported; wrong format (magic 0x${magic.toString(16)} at byte ${reader.offset - 8}, expected 0x4558494e)`,
      );
    }
    const path = await readText(reader, "exported path");
    const count = await wire(() => reader.readU64(MAX_REFERENCES, "number of references"));
    const references: string[] = [];
    for (let i = 0; i < count; i++) references.push(await readText(reader, "reference"));
    const deriver = await readText(reader, "deriver");
    const signed = await wire(() => reader.readU64(1, "signature flag"));
    if (signed === 1) await wire(() => reader.readString(MAX_SIGNATURE_LENGTH, "legacy signature"));
    yield { meta: { path, references, deriver: deriver === "" ? undefined : deriver }, nar };
  }
}

async function readText(reader: ByteReader, what: string): Promise<string> {
  return (await wire(() => reader.readString(MAX_PATH_LENGTH, what))).toString("utf8");
}

/** Turn truncation and bad padding into an export-format error that says what was being read. */
async function wire<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (e) {
    if (e instanceof ByteReadError) {
      throw new ExportFormatError(`malformed export stream: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

/** An item to export: its metadata and where its contents are on disk. */
export interface ExportSource extends ExportedPathMeta {
  physicalPath: string;
}

/** Export data is handed out once this much is buffered. */
const EXPORT_CHUNK = 64 * 1024;

/** The export stream of `items`, which must already be in dependency order. */
export async function* writeExport(
  items: Iterable<ExportSource>,
): AsyncGenerator<Buffer, void, undefined> {
  // One writer for the whole stream: small paths' NARs and their framing come out together,
  // a chunk per EXPORT_CHUNK bytes or so, not three per path.
  const out = new ByteWriter(2 * EXPORT_CHUNK);
  for (const item of items) {
    out.u64(1);
    yield* dumpNar(item.physicalPath, { writer: out });
    out.u64(EXPORT_MAGIC).string(item.path).u64(item.references.length);
    for (const r of item.references) out.string(r);
    out.string(item.deriver ?? "").u64(0);
    if (out.length >= EXPORT_CHUNK) yield out.take();
  }
  yield out.u64(0).take();
}
