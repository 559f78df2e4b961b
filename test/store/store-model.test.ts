// Model-based test: random sequences of store operations (add, add derivation, build outputs,
// register batches, queries, closures, failed paths, temp and permanent roots, GC, delete,
// verify) run against a real LocalStore and an in-memory model, and must agree after every step.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseDerivation } from "../../src/derivation/aterm-parse.ts";
import { printDerivation } from "../../src/derivation/aterm-print.ts";
import type { Derivation, DerivationOutput } from "../../src/derivation/derivation.ts";
import { derivationReferences, fillInOutputPaths } from "../../src/derivation/hash-modulo.ts";
import { Hash } from "../../src/hash/hash.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { regularFileNarHash } from "../../src/nar/nar-hash.ts";
import type { LocalStore } from "../../src/store/local-store.ts";
import { closureOf } from "../../src/store/path-graph.ts";
import {
  DanglingReferenceError,
  InvalidPathError,
  PathInUseError,
} from "../../src/store/store-errors.ts";
import { makeTextPath } from "../../src/store-path/make-store-path.ts";
import { DEAD_OWNER, useTempStores } from "./temp-store.ts";

const stores = useTempStores();

interface ModelPath {
  refs: Set<string>;
  narHash: string;
  narSize: number;
  deriver?: string;
  ca?: string;
  /** For derivations: output name → path. */
  outputs?: Map<string, string>;
}

interface Model {
  valid: Map<string, ModelPath>;
  failed: Set<string>;
  liveTemp: Set<string>;
  deadTemp: Set<string>;
  roots: Map<string, string>;
}

interface Real {
  store: LocalStore;
  /** The same store, acting for a process that is dead. */
  dead: LocalStore;
}

type Cmd = fc.AsyncCommand<Model, Real>;

const sorted = (xs: Iterable<string>) => [...xs].sort();
const validList = (m: Model) => sorted(m.valid.keys());
const pick = <T>(list: readonly T[], i: number): T | undefined =>
  list.length === 0 ? undefined : list[i % list.length];
const pickMany = (list: readonly string[], picks: number[]) =>
  sorted(new Set(picks.map((i) => pick(list, i)).filter((p): p is string => p !== undefined)));
const hashPart = (seed: string) => Hash.of("sha1", seed).toNix32();
const drvList = (m: Model) => validList(m).filter((p) => m.valid.get(p)!.outputs);

function synthetic(r: Real, seed: string, name = "x"): string {
  return `${r.store.storeDir.path}/${hashPart(seed)}-${name}`;
}

function referrers(m: Model, path: string): string[] {
  return validList(m).filter((q) => m.valid.get(q)!.refs.has(path));
}

function validDerivers(m: Model, path: string): string[] {
  return drvList(m).filter((d) => [...m.valid.get(d)!.outputs!.values()].includes(path));
}

/** What the collector must keep: roots and live temp roots, references, keep-derivations. */
function liveSet(m: Model): Set<string> {
  return closureOf([...m.roots.values(), ...m.liveTemp], (p) => {
    const v = m.valid.get(p);
    if (!v) return [];
    const next = [...v.refs];
    if (v.deriver && validDerivers(m, p).includes(v.deriver)) next.push(v.deriver);
    return next;
  });
}

/** After every command: same valid paths, same failed paths. */
function checkAll(m: Model, r: Real): void {
  expect(r.store.queryAllValidPaths()).toEqual(validList(m));
  expect(r.store.queryFailedPaths()).toEqual(sorted(m.failed));
}

function command(
  label: string,
  run: (m: Model, r: Real) => Promise<void> | void,
  check: (m: Model) => boolean = () => true,
): Cmd {
  return {
    check,
    async run(m, r) {
      await run(m, r);
      checkAll(m, r);
    },
    toString: () => label,
  };
}

const addText = fc
  .record({
    name: fc.constantFrom("a", "b", "c"),
    content: fc.string({ maxLength: 3 }),
    refs: fc.array(fc.nat(), { maxLength: 3 }),
  })
  .map(({ name, content, refs }) =>
    command(`addText(${name}, ${JSON.stringify(content)}, ${refs})`, (m, r) => {
      const refPaths = pickMany(validList(m), refs);
      const info = r.store.addTextToStore(name, content, refPaths);
      const { storeDir } = r.store;
      const expected = makeTextPath(
        storeDir,
        name,
        Hash.of("sha256", content),
        refPaths.map((p) => storeDir.parsePath(p)),
      );
      expect(info.path).toBe(storeDir.print(expected));
      expect(info.references).toEqual(refPaths);
      if (!m.valid.has(info.path)) {
        const nar = regularFileNarHash(Buffer.from(content));
        m.valid.set(info.path, {
          refs: new Set(refPaths),
          narHash: nar.hash.toString("hex"),
          narSize: nar.size,
          ca: `text:${Hash.of("sha256", content).toString()}`,
        });
      }
    }),
  );

function readStoreDrv(r: Real, path: string): Derivation {
  const name = r.store.parseStorePath(path).name.slice(0, -4);
  return parseDerivation(readFileSync(r.store.toRealPath(path)), {
    name,
    storeDir: r.store.storeDir,
  });
}

const addDrv = fc
  .record({
    name: fc.constantFrom("p", "q"),
    outputs: fc.constantFrom(["out"], ["dev", "out"]),
    srcs: fc.array(fc.nat(), { maxLength: 2 }),
    drvs: fc.array(fc.nat(), { maxLength: 2 }),
    script: fc.constantFrom("true", "echo > $out"),
  })
  .map(({ name, outputs, srcs, drvs, script }) =>
    command(`addDrv(${name}, ${outputs}, ${srcs}, ${drvs}, ${script})`, (m, r) => {
      const inputSrcs = pickMany(
        validList(m).filter((p) => !m.valid.get(p)!.outputs),
        srcs,
      );
      const inputDrvs = new Map(pickMany(drvList(m), drvs).map((d) => [d, ["out"]]));
      const drv: Derivation = {
        name,
        outputs: new Map(outputs.map((o): [string, DerivationOutput] => [o, { type: "deferred" }])),
        inputSrcs,
        inputDrvs,
        platform: "x86_64-linux",
        builder: "/bin/sh",
        args: ["-c", script],
        env: new Map([
          ["builder", "/bin/sh"],
          ["name", name],
          ["system", "x86_64-linux"],
        ]),
      };
      const filled = fillInOutputPaths(drv, r.store.storeDir, (p) => readStoreDrv(r, p));
      const bytes = printDerivation(filled);
      const refs = sorted(derivationReferences(filled));
      const info = r.store.addTextToStore(`${name}.drv`, bytes, refs);
      const outs = new Map(
        [...filled.outputs].map(([o, out]) => [o, out.type === "deferred" ? "" : out.path]),
      );
      expect(r.store.queryDerivationOutputs(info.path)).toEqual(outs);
      if (!m.valid.has(info.path)) {
        const nar = regularFileNarHash(bytes);
        m.valid.set(info.path, {
          refs: new Set(refs),
          narHash: nar.hash.toString("hex"),
          narSize: nar.size,
          ca: `text:${Hash.of("sha256", bytes).toString()}`,
          outputs: outs,
        });
      }
    }),
  );

/** Write contents for `path` (replacing an invalid leftover) and return its NAR hash and size. */
function writeContents(r: Real, path: string, text: string) {
  const real = r.store.toRealPath(path);
  if (existsSync(real)) deleteTree(real);
  writeFileSync(real, text);
  const nar = regularFileNarHash(Buffer.from(text));
  return { narHash: new Hash("sha256", nar.hash), narSize: nar.size };
}

const buildOutputs = fc
  .record({ drv: fc.nat(), refs: fc.array(fc.nat(), { maxLength: 3 }), self: fc.boolean() })
  .map(({ drv, refs, self }) =>
    command(
      `build(${drv}, ${refs}, ${self})`,
      (m, r) => {
        const unbuilt = drvList(m).filter((d) =>
          [...m.valid.get(d)!.outputs!.values()].some((o) => !m.valid.has(o)),
        );
        const drvPath = pick(unbuilt, drv)!;
        const outs = sorted(m.valid.get(drvPath)!.outputs!.values()).filter((o) => !m.valid.has(o));
        const base = pickMany(validList(m), refs);
        // Output i may refer to outputs before it (no cycles), to itself, and to valid paths.
        const infos = outs.map((o, i) => ({
          path: o,
          ...writeContents(r, o, `built ${o}`),
          references: sorted(new Set([...base, ...outs.slice(0, i), ...(self ? [o] : [])])),
          deriver: drvPath,
          ultimate: true,
        }));
        r.store.registerValidPaths(infos);
        for (const info of infos) {
          m.valid.set(info.path, {
            refs: new Set(info.references),
            narHash: info.narHash.toBase16(),
            narSize: info.narSize,
            deriver: drvPath,
          });
        }
        for (const o of outs) expect(r.store.queryValidDerivers(o)).toEqual(validDerivers(m, o));
      },
      (m) =>
        drvList(m).some((d) => [...m.valid.get(d)!.outputs!.values()].some((o) => !m.valid.has(o))),
    ),
  );

const registerBatch = fc
  .record({
    seed: fc.nat({ max: 20 }),
    count: fc.integer({ min: 1, max: 3 }),
    refs: fc.array(fc.nat(), { maxLength: 3 }),
    chain: fc.boolean(),
    dangling: fc.boolean(),
  })
  .map(({ seed, count, refs, chain, dangling }) =>
    command(`register(${seed}, ${count}, ${refs}, ${chain}, ${dangling})`, (m, r) => {
      const base = pickMany(validList(m), refs);
      const paths = Array.from({ length: count }, (_, i) =>
        synthetic(r, `r${seed}-${i}`, `r${i}`),
      ).filter((p) => !m.valid.has(p));
      if (paths.length === 0) return;
      const infos = paths.map((p, i) => ({
        path: p,
        ...writeContents(r, p, `registered ${p}`),
        references: sorted(new Set([...base, ...(chain && i > 0 ? [paths[i - 1]!] : [])])),
      }));
      if (dangling) {
        const last = infos[infos.length - 1]!;
        last.references = [...last.references, synthetic(r, "never-valid", "missing")];
        expect(() => r.store.registerValidPaths(infos)).toThrow(DanglingReferenceError);
        for (const p of paths) expect(r.store.isValidPath(p)).toBe(false);
        return;
      }
      r.store.registerValidPaths(infos);
      for (const info of infos) {
        m.valid.set(info.path, {
          refs: new Set(info.references),
          narHash: info.narHash.toBase16(),
          narSize: info.narSize,
        });
      }
    }),
  );

const queryInfo = fc.record({ i: fc.nat(), unknown: fc.boolean() }).map(({ i, unknown }) =>
  command(`query(${i}, ${unknown})`, (m, r) => {
    const path = unknown ? synthetic(r, `unknown${i % 3}`) : pick(validList(m), i);
    if (path === undefined) return;
    if (!m.valid.has(path)) {
      expect(r.store.isValidPath(path)).toBe(false);
      expect(() => r.store.queryPathInfo(path)).toThrow(InvalidPathError);
      expect(() => r.store.queryReferrers(path)).toThrow(InvalidPathError);
      return;
    }
    const want = m.valid.get(path)!;
    const info = r.store.queryPathInfo(path);
    expect(info.references).toEqual(sorted(want.refs));
    expect(info.narHash.toBase16()).toBe(want.narHash);
    expect(info.narSize).toBe(want.narSize);
    expect(info.deriver).toBe(want.deriver);
    expect(info.ca).toBe(want.ca);
    expect(r.store.queryReferrers(path)).toEqual(referrers(m, path));
    expect(r.store.queryValidDerivers(path)).toEqual(validDerivers(m, path));
  }),
);

const closure = fc
  .record({
    picks: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
    outputs: fc.boolean(),
    flip: fc.boolean(),
  })
  .map(({ picks, outputs, flip }) =>
    command(`closure(${picks}, outputs=${outputs}, flip=${flip})`, (m, r) => {
      const start = pickMany(validList(m), picks);
      if (start.length === 0) return;
      const want = closureOf(start, (p) => {
        if (flip) return [...referrers(m, p), ...(outputs ? validDerivers(m, p) : [])];
        const v = m.valid.get(p)!;
        const outs =
          outputs && v.outputs ? [...v.outputs.values()].filter((o) => m.valid.has(o)) : [];
        return [...v.refs, ...outs];
      });
      const got = r.store.computeFSClosure(start, { flipDirection: flip, includeOutputs: outputs });
      expect(got).toEqual(sorted(want));
      // Dependencies first: nothing refers to a path that comes later.
      const order = r.store.topoSortPaths(got);
      const seen = new Set<string>();
      for (const p of order) {
        for (const q of m.valid.get(p)!.refs)
          if (q !== p && want.has(q)) expect(seen.has(q)).toBe(true);
        seen.add(p);
      }
    }),
  );

const failed = fc
  .record({ op: fc.constantFrom("add", "has", "clear", "clearAll"), i: fc.nat() })
  .map(({ op, i }) =>
    command(`failed(${op}, ${i})`, (m, r) => {
      const path = synthetic(r, `failed${i % 4}`, "f");
      if (op === "add") {
        r.store.registerFailedPath(path);
        m.failed.add(path);
      } else if (op === "has") {
        expect(r.store.hasFailedPath(path)).toBe(m.failed.has(path));
      } else if (op === "clear") {
        r.store.clearFailedPaths([path]);
        m.failed.delete(path);
      } else {
        r.store.clearFailedPaths();
        m.failed.clear();
      }
    }),
  );

const tempRoot = fc
  .record({ i: fc.nat(), live: fc.boolean(), invalid: fc.boolean() })
  .map(({ i, live, invalid }) =>
    command(`tempRoot(${i}, live=${live}, invalid=${invalid})`, (m, r) => {
      const path = invalid ? synthetic(r, `temp${i % 3}`, "t") : pick(validList(m), i);
      if (path === undefined) return;
      (live ? r.store : r.dead).addTempRoot(path);
      (live ? m.liveTemp : m.deadTemp).add(path);
    }),
  );

const permRoot = fc
  .record({ i: fc.nat(), name: fc.constantFrom("r1", "r2", "r3"), remove: fc.boolean() })
  .map(({ i, name, remove }) =>
    command(`permRoot(${i}, ${name}, remove=${remove})`, (m, r) => {
      if (remove) {
        expect(r.store.removePermRoot(name)).toBe(m.roots.has(name));
        m.roots.delete(name);
        return;
      }
      const path = pick(validList(m), i);
      if (path === undefined) return;
      r.store.addPermRoot(path, name);
      m.roots.set(name, path);
    }),
  );

const gc = fc.constant(
  command("gc", async (m, r) => {
    const live = liveSet(m);
    const expected = validList(m).filter((p) => !live.has(p));
    const result = await r.store.collectGarbage({ runtimeRoots: false });
    expect(result.deleted).toEqual(expected);
    for (const p of expected) m.valid.delete(p);
    m.deadTemp.clear();
    expect((await r.store.verifyStore()).problems).toEqual([]);
  }),
);

const deletePath = fc.nat().map((i) =>
  command(`delete(${i})`, async (m, r) => {
    const path = pick(validList(m), i);
    if (path === undefined) return;
    const live = liveSet(m).has(path);
    const referenced = referrers(m, path).some((q) => q !== path);
    if (live || referenced) {
      await expect(r.store.deletePath(path)).rejects.toBeInstanceOf(PathInUseError);
      return;
    }
    expect((await r.store.deletePath(path)).deleted).toEqual([path]);
    m.valid.delete(path);
  }),
);

const verify = fc.constant(
  command("verify", async (_m, r) => {
    expect((await r.store.verifyStore()).problems).toEqual([]);
  }),
);

const allCommands = [
  addText,
  addText,
  addDrv,
  buildOutputs,
  registerBatch,
  queryInfo,
  closure,
  failed,
  tempRoot,
  permRoot,
  gc,
  deletePath,
  verify,
];

describe("LocalStore against a model", () => {
  it("agrees with the model on random operation sequences", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.commands(allCommands, { maxCommands: 60, size: "large" }),
        async (cmds) => {
          const stateDir = stores.freshDir("model");
          // Explicit temp roots only: the model decides what is rooted.
          const store = stores.open({ stateDir, tempRootsOnAdd: false });
          const dead = stores.open({ stateDir, owner: DEAD_OWNER, tempRootsOnAdd: false });
          try {
            await fc.asyncModelRun(
              () => ({
                model: {
                  valid: new Map(),
                  failed: new Set<string>(),
                  liveTemp: new Set<string>(),
                  deadTemp: new Set<string>(),
                  roots: new Map(),
                },
                real: { store, dead },
              }),
              cmds,
            );
          } finally {
            store.close();
            dead.close();
          }
        },
      ),
      // About 1,700 commands in all; stores reach ~20 paths between collections.
      { numRuns: 60 },
    );
  });
});
