// Finds which candidate store paths a byte stream refers to: a candidate is referenced when its
// 32-character hash part occurs anywhere (formats.md §8). This runs over every byte a build
// writes, so it avoids allocation per position: candidates are indexed by their first four
// bytes, and windows containing a non-nix32 byte are skipped past, as Nix does.
import { HASH_PART_LEN } from "../store-path/store-path.ts";

const IS_NIX32 = new Uint8Array(256);
for (const c of "0123456789abcdfghijklmnpqrsvwxyz") IS_NIX32[c.charCodeAt(0)] = 1;

export class ReferenceScanner {
  /** First four bytes (little-endian u32) → candidates starting with them. */
  private readonly byPrefix = new Map<number, { hash: Buffer; path: string }[]>();
  private readonly found = new Set<string>();
  /** The last HASH_PART_LEN - 1 bytes of the previous chunk, to see hashes split across chunks. */
  private tail = Buffer.alloc(0);
  private remaining: number;

  /** `candidates`: store paths (full or base names) whose hash parts are looked for. */
  constructor(candidates: Iterable<string>) {
    for (const path of candidates) {
      const base = path.slice(path.lastIndexOf("/") + 1);
      const hash = Buffer.from(base.slice(0, HASH_PART_LEN), "latin1");
      if (hash.length !== HASH_PART_LEN) continue;
      const key = hash.readUInt32LE(0);
      const list = this.byPrefix.get(key) ?? [];
      if (!list.some((c) => c.path === path)) list.push({ hash, path });
      this.byPrefix.set(key, list);
    }
    this.remaining = [...this.byPrefix.values()].reduce((n, l) => n + l.length, 0);
  }

  update(chunk: Uint8Array): void {
    if (this.remaining === 0 || chunk.length === 0) return;
    const data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const seam = HASH_PART_LEN - 1;
    if (data.length < seam) {
      // Too short to hold the next seam's bytes alone: scan and keep it with what came before.
      const joined = Buffer.concat([this.tail, data]);
      this.scan(joined);
      this.tail = Buffer.from(joined.subarray(Math.max(0, joined.length - seam)));
      return;
    }
    // A hash split across the seam lies in the tail and the chunk's first bytes: scan those
    // together (a few dozen bytes), then the chunk in place, with no copy of the chunk.
    if (this.tail.length > 0) this.scan(Buffer.concat([this.tail, data.subarray(0, seam)]));
    this.scan(data);
    this.tail = Buffer.from(data.subarray(data.length - seam));
  }

  private scan(s: Buffer): void {
    const len = s.length;
    let i = 0;
    while (i + HASH_PART_LEN <= len) {
      let j = HASH_PART_LEN - 1;
      while (j >= 0 && IS_NIX32[s[i + j]!]) j--;
      if (j >= 0) {
        i += j + 1;
        continue;
      }
      const list = this.byPrefix.get(s.readUInt32LE(i));
      if (list) {
        for (const c of list) {
          if (
            !this.found.has(c.path) &&
            s.compare(c.hash, 0, HASH_PART_LEN, i, i + HASH_PART_LEN) === 0
          ) {
            this.found.add(c.path);
            this.remaining--;
          }
        }
      }
      i++;
    }
  }

  /** The candidates seen so far. */
  result(): Set<string> {
    return new Set(this.found);
  }
}
