// Comparing two versions of a derivation: own differences only, inputs' changes seen through.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Derivation } from "../../src/derivation/derivation.ts";
import {
  changedInputDrvs,
  describeChange,
  diffDerivations,
  drvPathName,
  pairUp,
  pathRewriter,
} from "../../src/events/drv-diff.ts";
import { Hash } from "../../src/hash/hash.ts";
import { StoreDir } from "../../src/store-path/store-path.ts";
import { derivation, trickyString } from "../derivation/arbitrary.ts";

const S = "/nix/store";
const h = (c: string) => c.repeat(32);
const path = (c: string, name: string) => `${S}/${h(c)}-${name}`;

function drv(over: Partial<Derivation> = {}): Derivation {
  const out = path("a", "hello");
  return {
    name: "hello",
    outputs: new Map([["out", { type: "inputAddressed", path: out }]]),
    inputDrvs: new Map([[path("b", "dep.drv"), ["out"]]]),
    inputSrcs: [path("c", "builder.sh")],
    platform: "x86_64-linux",
    builder: "/bin/sh",
    args: ["-e", path("c", "builder.sh")],
    env: new Map([
      ["dep", path("d", "dep")],
      ["greeting", "hello"],
      ["out", out],
    ]),
    ...over,
  };
}

const withEnv = (d: Derivation, k: string, v: string) => ({
  ...d,
  env: new Map([...d.env, [k, v]]),
});

describe("diffDerivations", () => {
  it("finds nothing between a derivation and itself", () => {
    fc.assert(
      fc.property(derivation(StoreDir.nix), (x) => {
        expect(diffDerivations(x, x)).toEqual([]);
        expect(changedInputDrvs(x, x)).toEqual([]);
      }),
    );
  });

  it("reports a single env change as exactly that key, old and new value", () => {
    fc.assert(
      fc.property(derivation(StoreDir.nix), trickyString, trickyString, (x, key, value) => {
        fc.pre(x.env.get(key) !== value);
        const old = x.env.get(key);
        expect(diffDerivations(x, withEnv(x, key, value))).toEqual([
          { kind: "env", key, ...(old === undefined ? {} : { old }), new: value },
        ]);
      }),
    );
  });

  it("says a changed env value the way people read it", () => {
    const [c] = diffDerivations(drv(), withEnv(drv(), "greeting", "hi"));
    expect(describeChange(c!)).toBe(`env 'greeting' changed: "hello" → "hi"`);
  });

  it("sees through a changed input: its drv and output paths, and the own output path", () => {
    const old = drv();
    const neu = drv({
      outputs: new Map([["out", { type: "inputAddressed", path: path("e", "hello") }]]),
      inputDrvs: new Map([[path("f", "dep.drv"), ["out"]]]),
      env: new Map([
        ["dep", path("g", "dep")],
        ["greeting", "hello"],
        ["out", path("e", "hello")],
      ]),
    });
    expect(changedInputDrvs(old, neu).map(([o, n]) => [o.path, n.path])).toEqual([
      [path("b", "dep.drv"), path("f", "dep.drv")],
    ]);
    // Without knowing what the input's output became, the env var looks changed…
    expect(diffDerivations(old, neu).map((c) => c.kind)).toEqual(["env"]);
    // …and with it, or with only its new path (its old text unknown), it is a consequence.
    expect(
      diffDerivations(old, neu, { exact: new Map([[path("d", "dep"), path("g", "dep")]]) }),
    ).toEqual([]);
    expect(diffDerivations(old, neu, { byName: new Map([["dep", path("g", "dep")]]) })).toEqual([]);
    // A real change beside it still shows, alone.
    const both = withEnv(neu, "greeting", "hi");
    expect(
      diffDerivations(old, both, { exact: new Map([[path("d", "dep"), path("g", "dep")]]) }),
    ).toEqual([{ kind: "env", key: "greeting", old: "hello", new: "hi" }]);
  });

  it("reports a changed input source once, not in the args that name it", () => {
    const neu = drv({
      inputSrcs: [path("h", "builder.sh")],
      args: ["-e", path("h", "builder.sh")],
    });
    const changes = diffDerivations(drv(), neu);
    expect(changes).toEqual([
      {
        kind: "inputSrc",
        name: "builder.sh",
        old: path("c", "builder.sh"),
        new: path("h", "builder.sh"),
      },
    ]);
    expect(describeChange(changes[0]!)).toMatch(/^input source 'builder.sh' changed: /);
  });

  it("reports builder, args, outputs and input derivations added or removed", () => {
    const fixed = (b: number) => ({
      type: "fixed" as const,
      path: path("i", "src"),
      method: "nar" as const,
      hash: new Hash("sha256", Buffer.alloc(32, b)),
    });
    const old = drv({ outputs: new Map([["out", fixed(1)]]) });
    const neu = drv({
      builder: "/bin/bash",
      args: ["-x", path("c", "builder.sh")],
      outputs: new Map([["out", fixed(2)]]),
      inputDrvs: new Map([[path("j", "other.drv"), ["out"]]]),
    });
    const changes = diffDerivations(old, neu);
    expect(changes.map((c) => c.kind)).toEqual([
      "builder",
      "args",
      "output",
      "inputDrv",
      "inputDrv",
    ]);
    expect(changes.map(describeChange)).toEqual([
      `builder changed: "/bin/sh" → "/bin/bash"`,
      `argument 1 changed: "-e" → "-x"`,
      expect.stringMatching(/^output 'out' changed: fixed r:sha256:\w+ → fixed r:sha256:\w+$/),
      `input derivation 'dep' removed: "${path("b", "dep.drv")}"`,
      `input derivation 'other' added: "${path("j", "other.drv")}"`,
    ]);
  });

  it("pairs same-named inputs by path, then outputs, then position", () => {
    const p = pairUp(
      [
        { n: "x", o: "out", id: 1 },
        { n: "x", o: "dev", id: 2 },
        { n: "y", o: "out", id: 3 },
      ],
      [
        { n: "x", o: "dev", id: 4 },
        { n: "x", o: "lib", id: 5 },
        { n: "z", o: "out", id: 6 },
      ],
      [(e) => `${e.n}/${e.o}`, (e) => e.n],
    );
    expect(p.pairs.map(([a, b]) => [a.id, b.id])).toEqual([
      [2, 4],
      [1, 5],
    ]);
    expect(p.onlyOld.map((e) => e.id)).toEqual([3]);
    expect(p.onlyNew.map((e) => e.id)).toEqual([6]);
  });
});

describe("pathRewriter", () => {
  it("rewrites exact paths and, by name, paths whose old hash is unknown", () => {
    const rw = pathRewriter({
      exact: new Map([[path("a", "x"), path("b", "x")]]),
      byName: new Map([["y", path("c", "y")]]),
    });
    expect(rw(`${path("a", "x")}/bin:${path("d", "y")}/lib ${path("d", "y-dev")}`)).toBe(
      `${path("b", "x")}/bin:${path("c", "y")}/lib ${path("d", "y-dev")}`,
    );
  });

  it("names derivations by their .drv path", () => {
    expect(drvPathName(path("a", "hello-2.1.drv"))).toBe("hello-2.1");
  });
});
