// Properties over random trees: dump ∘ restore is the identity on what a NAR records, the
// dumper agrees with an independent encoder, and no corruption of a NAR makes the parser (or
// restore) fail with anything but its own typed errors.

import { createHash } from "node:crypto";
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteReader } from "../../src/io/byte-reader.ts";
import { NarError, NarRestoreError } from "../../src/nar/nar-error.ts";
import { narHash } from "../../src/nar/nar-hash.ts";
import { narListing } from "../../src/nar/nar-listing.ts";
import { parseNar } from "../../src/nar/nar-parse.ts";
import { restoreNar } from "../../src/nar/nar-restore.ts";
import { inChunks, scribblingSource } from "../io/chunked-source.ts";
import { readTree, treeArb, treeSummary, writeTree } from "./file-tree.ts";
import { directory, type NarToken, nar as narOf, regular } from "./hand-built-nar.ts";
import { dumpToBuffer } from "./nar-chunks.ts";
import { treeNar } from "./nar-tree-tokens.ts";
import { useTempDir } from "./temp-dir.ts";

const temp = useTempDir();

const chunkSizesArb = fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 5 });

describe("NAR properties", () => {
  it("dump → restore reproduces the tree (types, bytes, exec bit, symlink targets)", async () => {
    await fc.assert(
      fc.asyncProperty(treeArb(), chunkSizesArb, async (tree, sizes) => {
        const source = temp.fresh("src");
        writeTree(source, tree);
        expect(treeSummary(readTree(source))).toEqual(treeSummary(tree));
        const nar = await dumpToBuffer(source);
        expect(nar.equals(treeNar(tree))).toBe(true);
        expect(await narHash(source)).toEqual({
          hash: createHash("sha256").update(nar).digest(),
          size: nar.length,
        });
        const copy = temp.fresh("copy");
        const result = await restoreNar(inChunks(nar, sizes), copy, { hashAlgorithm: "sha256" });
        expect(result.narSize).toBe(nar.length);
        expect(treeSummary(readTree(copy))).toEqual(treeSummary(tree));
        expect((await dumpToBuffer(copy)).equals(nar)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it("restores the same from a source that refills its buffers (stdin's blocking reads)", async () => {
    await fc.assert(
      fc.asyncProperty(treeArb(), chunkSizesArb, async (tree, sizes) => {
        const nar = treeNar(tree);
        const copy = temp.fresh("copy");
        const { source } = scribblingSource(nar, sizes);
        const result = await restoreNar(source, copy, { hashAlgorithm: "sha256" });
        expect(result.narHash).toEqual(createHash("sha256").update(nar).digest());
        expect((await dumpToBuffer(copy)).equals(nar)).toBe(true);
        const listed = await narListing(scribblingSource(nar, sizes).source);
        expect(listed).toEqual(await narListing([nar]));
      }),
      { numRuns: 100 },
    );
  });

  it("checks entry order against the name before when buffers are refilled", async () => {
    // Each name is compared with the one before: a kept view of a refilled buffer would be garbage.
    const cases: [string[], RegExp | undefined][] = [
      [["a", "b", "c"], undefined],
      [["a", "a"], /duplicate entry name 'a'/],
      [["b", "a"], /'a' comes after 'b'/],
    ];
    for (const [names, error] of cases) {
      const bytes = narOf(directory(names.map((n): [string, NarToken[]] => [n, regular("x")])));
      for (const size of [1, 3, 8, 16, 40]) {
        const parsed = parseNar(new ByteReader(scribblingSource(bytes, [size]).source), {});
        if (error) await expect(parsed).rejects.toThrow(error);
        else expect(await parsed).toBe(bytes.length);
      }
    }
  });

  it("every truncation of a generated NAR is refused as truncated", async () => {
    await fc.assert(
      fc.asyncProperty(
        treeArb({ large: false }).chain((tree) => {
          const nar = treeNar(tree);
          return fc.tuple(
            fc.constant(nar),
            fc.integer({ min: 0, max: nar.length - 1 }),
            chunkSizesArb,
          );
        }),
        async ([nar, cut, sizes]) => {
          const error = await parseNar(new ByteReader(inChunks(nar.subarray(0, cut), sizes))).catch(
            (e: unknown) => e,
          );
          expect(error).toBeInstanceOf(NarError);
          expect((error as NarError).code).toBe("truncated");
        },
      ),
      { numRuns: 300 },
    );
  });

  const mutationArb = fc.oneof(
    fc.record({
      kind: fc.constant("set" as const),
      at: fc.nat(),
      value: fc.integer({ min: 0, max: 255 }),
    }),
    fc.record({
      kind: fc.constant("flip" as const),
      at: fc.nat(),
      bit: fc.integer({ min: 0, max: 7 }),
    }),
    fc.record({
      kind: fc.constant("delete" as const),
      at: fc.nat(),
      count: fc.integer({ min: 1, max: 16 }),
    }),
    fc.record({
      kind: fc.constant("insert" as const),
      at: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
    }),
    // Overwrite an aligned u64 (a length field, most likely) with a random or huge value.
    fc.record({
      kind: fc.constant("length" as const),
      at: fc.nat(),
      value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    }),
  );
  type Mutation = typeof mutationArb extends fc.Arbitrary<infer T> ? T : never;

  function mutate(nar: Buffer, mutations: Mutation[]): Buffer {
    let bytes = Buffer.from(nar);
    for (const m of mutations) {
      if (bytes.length === 0) break;
      const at = m.at % bytes.length;
      switch (m.kind) {
        case "set":
          bytes[at] = m.value;
          break;
        case "flip":
          bytes[at]! ^= 1 << m.bit;
          break;
        case "delete":
          bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.count)]);
          break;
        case "insert":
          bytes = Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
          break;
        case "length": {
          const aligned = at - (at % 8);
          if (aligned + 8 <= bytes.length) bytes.writeBigUInt64LE(m.value, aligned);
          break;
        }
      }
    }
    return bytes;
  }

  it("mutated NARs parse or fail with NarError, nothing else", async () => {
    await fc.assert(
      fc.asyncProperty(
        treeArb({ large: false }),
        fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
        chunkSizesArb,
        async (tree, mutations, sizes) => {
          const bytes = mutate(treeNar(tree), mutations);
          try {
            await narListing(inChunks(bytes, sizes));
          } catch (error) {
            expect(error).toBeInstanceOf(NarError);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("restoring mutated NARs fails only with typed errors and writes only inside the target", async () => {
    await fc.assert(
      fc.asyncProperty(
        treeArb({ large: false }),
        fc.array(mutationArb, { minLength: 1, maxLength: 3 }),
        async (tree, mutations) => {
          const bytes = mutate(treeNar(tree), mutations);
          const parent = temp.fresh("mutated");
          mkdirSync(parent);
          try {
            await restoreNar([bytes], join(parent, "out"));
            expect(readdirSync(parent)).toEqual(["out"]);
          } catch (error) {
            // NarRestoreError: a valid archive the file system refuses (e.g. a 300-byte name).
            expect(error instanceof NarError || error instanceof NarRestoreError).toBe(true);
            expect(readdirSync(parent)).toEqual([]);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
