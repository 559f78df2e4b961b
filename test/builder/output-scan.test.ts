// One pass over an output's NAR (reused read buffers): the hash, size and references are those of
// the whole NAR, and a rewrite is the NAR with every occurrence replaced, wherever the hash parts
// fall relative to the dumper's 64 KiB pieces.
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { scanOutput } from "../../src/builder/output-scan.ts";
import { dumpToBuffer } from "../nar/nar-chunks.ts";
import { useTempDir } from "../nar/temp-dir.ts";

const temp = useTempDir("nixstate-output-scan-");
const A = "0c7sbcj4jkghd4lhd3nm6qnmkcj0v58q";
const B = "1b2pzs5wbcpvwm4fzmgwxpb2kqk43r9n";
const C = "9zlx2q6kjw3y1n0dgvrfs8h6a4c7b5pm";
const candidates = [`/nix/store/${A}-a`, `/nix/store/${B}-b`, `/nix/store/${C}-c`];

describe("scanOutput", () => {
  it("hashes, sizes and scans the NAR of a tree with large files (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 70_000, max: 400_000 }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom(A, B)), { maxLength: 4 }),
        async (size, placed) => {
          const out = temp.fresh("out");
          mkdirSync(join(out, "sub"), { recursive: true });
          const big = Buffer.alloc(size, "-");
          for (const [at, hash] of placed) big.write(hash, at % (size - 32), "latin1");
          writeFileSync(join(out, "sub", "big"), big);
          writeFileSync(join(out, "small"), `ref ${C} and more`);
          const nar = await dumpToBuffer(out);
          const scan = await scanOutput(out, candidates);
          expect(scan.narSize).toBe(nar.length);
          expect(scan.narHash.digest).toEqual(createHash("sha256").update(nar).digest());
          const expected = candidates.filter((p) => nar.includes(p.slice(11, 43)));
          expect([...scan.references].sort()).toEqual(expected.sort());

          const rewritten = await scanOutput(out, candidates, { rewrite: { from: A, to: B } });
          const replaced = Buffer.from(nar.toString("latin1").replaceAll(A, B), "latin1");
          expect(rewritten.narHash.digest).toEqual(createHash("sha256").update(replaced).digest());
          expect(rewritten.references.has(candidates[0]!)).toBe(false);
        },
      ),
      { numRuns: 25 },
    );
  });

  it("finds a hash part split across two of the dumper's pieces", async () => {
    const out = temp.fresh("seam");
    mkdirSync(out);
    const big = Buffer.alloc(200_000, "-");
    // A large file is read in 64 KiB pieces from its start: this hash part straddles the first seam.
    big.write(A, 65_536 - 16, "latin1");
    writeFileSync(join(out, "f"), big);
    const scan = await scanOutput(out, candidates);
    expect([...scan.references]).toEqual([candidates[0]]);
  });
});
