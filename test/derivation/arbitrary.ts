// fast-check generators for derivations, shared by the codec properties.
import fc from "fast-check";
import { decodeBytes } from "../../src/derivation/byte-string.ts";
import type { Derivation, DerivationOutput } from "../../src/derivation/derivation.ts";
import { HASH_ALGOS, HASH_SIZE, Hash } from "../../src/hash/hash.ts";
import { nix32Encode } from "../../src/hash/nix32.ts";
import type { StoreDir } from "../../src/store-path/store-path.ts";

const NAME_CHARS = [..."abcdefghijklmnopqrstuvwxyzABCXYZ0123456789+-._?="];

export const storePathName = fc
  .string({ unit: fc.constantFrom(...NAME_CHARS), minLength: 1, maxLength: 40 })
  .filter((n) => n !== "." && n !== ".." && !n.startsWith(".-") && !n.startsWith("..-"));

export const drvName = storePathName.filter((n) => !n.endsWith(".drv"));

export function storePath(storeDir: StoreDir, suffix = ""): fc.Arbitrary<string> {
  return fc
    .tuple(fc.uint8Array({ minLength: 20, maxLength: 20 }), storePathName)
    .map(([h, n]) => `${storeDir.path}/${nix32Encode(h)}-${n}${suffix}`);
}

/** Strings with everything ATerm must escape, unicode, and raw non-UTF-8 bytes. */
export const trickyString: fc.Arbitrary<string> = fc.oneof(
  fc.string({
    unit: fc.constantFrom(
      '"',
      "\\",
      "\n",
      "\r",
      "\t",
      "a",
      "$",
      "(",
      ")",
      ",",
      "[",
      "]",
      " ",
      "\0",
      "\x7f",
    ),
  }),
  fc.string({ unit: "grapheme" }),
  fc.uint8Array({ maxLength: 12 }).map((b) => decodeBytes(b)),
);

const outputName = fc.constantFrom("out", "dev", "lib", "bin", "doc", "man", "x-y", "o.2");

export function derivation(storeDir: StoreDir): fc.Arbitrary<Derivation> {
  const fixed = fc
    .tuple(
      fc.constantFrom(...HASH_ALGOS),
      fc.constantFrom<"flat" | "nar">("flat", "nar"),
      fc.uint8Array({ minLength: 64, maxLength: 64 }),
      storePath(storeDir),
    )
    .map(([algo, method, bytes, path]) => {
      const out: DerivationOutput = {
        type: "fixed",
        path,
        method,
        hash: new Hash(algo, bytes.subarray(0, HASH_SIZE[algo])),
      };
      return new Map([["out", out]]);
    });
  const ia = fc
    .uniqueArray(fc.tuple(outputName, storePath(storeDir)), {
      selector: (x) => x[0],
      minLength: 1,
      maxLength: 4,
    })
    .map(
      (xs) =>
        new Map(xs.map(([n, p]) => [n, { type: "inputAddressed", path: p } as DerivationOutput])),
    );
  const deferred = fc
    .uniqueArray(outputName, { minLength: 1, maxLength: 3 })
    .map((xs) => new Map(xs.map((n) => [n, { type: "deferred" } as DerivationOutput])));
  return fc.record({
    name: drvName,
    outputs: fc.oneof(fixed, ia, deferred),
    inputDrvs: fc
      .uniqueArray(
        fc.tuple(
          storePath(storeDir, ".drv"),
          fc.uniqueArray(outputName, { minLength: 1, maxLength: 3 }),
        ),
        {
          selector: (x) => x[0],
          maxLength: 4,
        },
      )
      .map((xs) => new Map(xs.map(([p, o]) => [p, [...o].sort()]))),
    inputSrcs: fc.uniqueArray(storePath(storeDir), { maxLength: 4 }).map((xs) => xs.sort()),
    platform: fc.constantFrom("x86_64-linux", "aarch64-darwin", "builtin", ""),
    builder: trickyString,
    args: fc.array(trickyString, { maxLength: 5 }),
    env: fc
      .uniqueArray(fc.tuple(trickyString, trickyString), { selector: (x) => x[0], maxLength: 8 })
      .map((xs) => new Map(xs)),
  });
}
