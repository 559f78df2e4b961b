import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { ReferenceScanner } from "../../src/builder/reference-scanner.ts";
import { nix32Encode } from "../../src/hash/nix32.ts";
import { haveVectors, readVectorJson } from "../vectors.ts";

function scan(candidates: string[], chunks: (string | Buffer)[]): string[] {
  const s = new ReferenceScanner(candidates);
  for (const c of chunks) s.update(Buffer.from(c));
  return [...s.result()].sort();
}

const hashPart = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => nix32Encode(b));

describe("ReferenceScanner", () => {
  it("finds hash parts anywhere, without the store dir, and across chunk seams", () => {
    const a = "/nix/store/knn6wc1a89c47yb70qwv56rmxylia6wx-hello-2.12";
    expect(scan([a], ["xx knn6wc1a89c47yb70qwv56rmxylia6wx yy"])).toEqual([a]);
    expect(scan([a], ["knn6wc1a89c47yb70qw", "v56rmxylia6wx"])).toEqual([a]);
    expect(scan([a], ["k", "n", "n6wc1a89c47yb70qwv56rmxylia6w", "x"])).toEqual([a]);
    expect(scan([a], ["knn6wc1a89c47yb70qwv56rmxylia6w"])).toEqual([]);
  });

  test.prop([
    fc.array(hashPart, { minLength: 1, maxLength: 8 }),
    fc.array(fc.nat(), { maxLength: 8 }),
    fc.uint8Array({ maxLength: 300 }),
    fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1 }),
  ])(
    "finds exactly the candidates embedded in random data, whatever the chunking",
    (hashes, picks, noise, sizes) => {
      const candidates = hashes.map((h, i) => `/nix/store/${h}-p${i}`);
      const embedded = new Set(picks.map((p) => candidates[p % candidates.length]!));
      const parts: Buffer[] = [Buffer.from(noise)];
      for (const c of embedded)
        parts.push(Buffer.from(`/${c.slice(11, 43)}/`), Buffer.from(noise.subarray(0, 7)));
      const data = Buffer.concat(parts);
      const chunks: Buffer[] = [];
      for (let at = 0, k = 0; at < data.length; k++) {
        const n = sizes[k % sizes.length]!;
        chunks.push(data.subarray(at, at + n));
        at += n;
      }
      // Noise may itself contain a candidate's hash only with negligible probability.
      const expected = candidates.filter((c) => data.includes(c.slice(11, 43))).sort();
      expect(scan(candidates, chunks)).toEqual(expected);
      for (const c of embedded) expect(expected).toContain(c);
    },
  );

  describe.runIf(haveVectors)("vectors", () => {
    type C = { title: string; candidates: string[]; chunks: string[]; expected: string[] };
    const cases = haveVectors
      ? readVectorJson<{ cases: C[] }>("references", "reference-scan-cases.json").cases
      : [];
    it.each(cases)("$title", (c) => {
      expect(scan(c.candidates, c.chunks)).toEqual([...c.expected].sort());
    });
  });
});
