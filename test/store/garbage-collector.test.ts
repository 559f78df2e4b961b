// The garbage collector: what it keeps (roots, temp roots of live processes, inputs and outputs
// of a running build in another process), what it deletes, and that the store verifies after.
import {
  existsSync,
  mkdirSync,
  readdirSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Hash } from "../../src/hash/hash.ts";
import type { LocalStore } from "../../src/store/local-store.ts";
import { PathInUseError } from "../../src/store/store-errors.ts";
import { type Child, spawnStoreChild } from "./child-process.ts";
import { DEAD_OWNER, useTempStores } from "./temp-store.ts";

const temp = useTempStores();
// Paths added here get no automatic temp roots, so only the roots each test sets up count.
const stores = {
  ...temp,
  open: (options: Parameters<typeof temp.open>[0] = {}) =>
    temp.open({ tempRootsOnAdd: false, ...options }),
};
const children: Child[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.proc.exitCode === null) c.proc.kill("SIGKILL");
});

/** a ← b ← c (c refers to b refers to a), plus an unrelated d. */
function chain(store: LocalStore, tag: string) {
  const a = store.addTextToStore(`a-${tag}`, `a ${tag}`).path;
  const b = store.addTextToStore(`b-${tag}`, `b ${tag} ${a}`, [a]).path;
  const c = store.addTextToStore(`c-${tag}`, `c ${tag} ${b}`, [b]).path;
  const d = store.addTextToStore(`d-${tag}`, `d ${tag}`).path;
  return { a, b, c, d };
}

async function expectVerifiesClean(store: LocalStore): Promise<void> {
  const report = await store.verifyStore();
  expect(report.problems).toEqual([]);
}

describe("collectGarbage", () => {
  it("keeps the closures of direct, indirect and in-path roots and deletes the rest", async () => {
    const store = stores.open();
    const one = chain(store, "1");
    const two = chain(store, "2");
    const three = chain(store, "3");
    store.addPermRoot(one.b, "direct");
    const result = join(stores.root, "result");
    symlinkSync(two.c, result);
    store.addIndirectRoot(result);
    store.addPermRoot(`${three.a}/inside`, "nested/inside");
    const gc = await store.collectGarbage({ runtimeRoots: false });
    const kept = [one.a, one.b, two.a, two.b, two.c, three.a].sort();
    expect(store.queryAllValidPaths()).toEqual(kept);
    expect(gc.deleted).toEqual([one.c, one.d, two.d, three.b, three.c, three.d].sort());
    expect(gc.bytesFreed).toBeGreaterThan(0);
    for (const p of gc.deleted) expect(existsSync(store.toRealPath(p))).toBe(false);
    await expectVerifiesClean(store);

    // Removing the `result` link turns the indirect root stale: it is dropped and no longer keeps.
    unlinkSync(result);
    await store.collectGarbage({ runtimeRoots: false });
    expect(store.queryAllValidPaths()).toEqual([one.a, one.b, three.a].sort());
    expect(readdirSync(join(store.layout.gcRootsDir, "auto"))).toEqual([]);
  });

  it("keeps temp roots of live processes only", async () => {
    const stateDir = stores.freshDir();
    const store = stores.open({ stateDir });
    const dead = stores.open({ stateDir, owner: DEAD_OWNER });
    const { a, b, c, d } = chain(store, "t");
    store.addTempRoot(b);
    dead.addTempRoot(d);
    await store.collectGarbage({ runtimeRoots: false });
    expect(store.queryAllValidPaths()).toEqual([a, b].sort());
    expect(store.isValidPath(c)).toBe(false);
    const rows = store.database.prepare("SELECT pid FROM TempRoots").all() as { pid: number }[];
    expect(rows.map((r) => r.pid)).toEqual([process.pid]);
    store.removeTempRoots();
    await store.collectGarbage({ runtimeRoots: false });
    expect(store.queryAllValidPaths()).toEqual([]);
    await expectVerifiesClean(store);
  });

  it("keeps the derivation of a live output (keep-derivations), and outputs only on request", async () => {
    const store = stores.open();
    const dir = store.storeDir.path;
    const out = `${dir}/${Hash.of("sha1", "out").toNix32()}-built`;
    const text = `Derive([("out","${out}","","")],[],[],"x86_64-linux","/bin/sh",[],[("out","${out}")])`;
    const drv = store.addTextToStore("built.drv", text).path;
    writeFileSync(out, "built");
    store.registerValidPath({
      path: out,
      narHash: Hash.of("sha256", "unchecked here"),
      narSize: 5,
      deriver: drv,
    });
    store.addTempRoot(out);
    const dry = await store.collectGarbage({ runtimeRoots: false, dryRun: true });
    expect(dry.deleted).toEqual([]);
    store.removeTempRoots();
    store.addPermRoot(drv, "drv");
    const gc1 = await store.collectGarbage({ runtimeRoots: false, keepOutputs: true });
    expect(gc1.deleted).toEqual([]);
    const gc2 = await store.collectGarbage({ runtimeRoots: false });
    expect(gc2.deleted).toEqual([out]);
  });

  it("a dry run reports and changes nothing", async () => {
    const store = stores.open();
    const { a, b, c, d } = chain(store, "dry");
    const dry = await store.collectGarbage({ dryRun: true, runtimeRoots: false });
    expect(dry.deleted).toEqual([a, b, c, d].sort());
    expect(store.queryAllValidPaths()).toEqual([a, b, c, d].sort());
    expect(dry.bytesFreed).toBeGreaterThan(0);
  });

  it("a dry run leaves dead processes' temp roots and locks for the real collection", async () => {
    const stateDir = stores.freshDir();
    const store = stores.open({ stateDir });
    const dead = stores.open({ stateDir, owner: DEAD_OWNER, sweepDeadLocks: false });
    const { a, b, c, d } = chain(store, "dr");
    dead.addTempRoot(b);
    expect(dead.locks.tryLock(a)).toBeDefined();
    const rows = () => ({
      temp: store.database.prepare("SELECT count(*) FROM TempRoots").pluck().get(),
      locks: store.database.prepare("SELECT count(*) FROM PathLocks").pluck().get(),
    });
    const before = rows();
    expect(before).toEqual({ temp: 1, locks: 1 });
    const dry = await store.collectGarbage({ dryRun: true, runtimeRoots: false });
    // Planned as the real one will be: the dead process's temp root does not keep b alive.
    expect(dry.deleted).toEqual([a, b, c, d].sort());
    expect(rows()).toEqual(before);
    expect(store.queryAllValidPaths()).toEqual([a, b, c, d].sort());
    const real = await store.collectGarbage({ runtimeRoots: false });
    expect(real.deleted).toEqual(dry.deleted);
    expect(rows()).toEqual({ temp: 0, locks: 0 });
  });

  it("takes back a dead process's temp roots and locks when the store opens", () => {
    const stateDir = stores.freshDir();
    const dead = stores.open({ stateDir, owner: DEAD_OWNER, sweepDeadLocks: false });
    const { a, b } = chain(dead, "gone");
    dead.addTempRoot(b);
    expect(dead.locks.tryLock(a)).toBeDefined();
    const count = (table: string) =>
      dead.database.prepare(`SELECT count(*) FROM ${table}`).pluck().get();
    expect([count("TempRoots"), count("PathLocks")]).toEqual([1, 1]);
    stores.open({ stateDir });
    expect([count("TempRoots"), count("PathLocks")]).toEqual([0, 0]);
  });

  it("never deletes inputs or the locked output of a build running in another process", async () => {
    const stateDir = stores.freshDir();
    const store = stores.open({ stateDir });
    const input = chain(store, "in");
    const runtime = store.addTextToStore("used-as-cwd", "cwd");
    const out = `${store.storeDir.path}/${Hash.of("sha1", "build-out").toNix32()}-out`;
    const junk = `${store.storeDir.path}/${Hash.of("sha1", "junk").toNix32()}-junk`;
    mkdirSync(junk);
    writeFileSync(join(junk, "f"), "left by a crash");

    const child = spawnStoreChild(stateDir, ["build", out, runtime.path, input.c]);
    children.push(child);
    await child.waitFor("building");
    // The open file is only a runtime root: without runtime roots it would go.
    const without = await store.collectGarbage({ dryRun: true, runtimeRoots: false });
    expect(without.deleted).toContain(runtime.path);
    const gc = await store.collectGarbage();
    // Inputs (temp roots) with their closure, the runtime root and the locked output stay.
    for (const p of [input.a, input.b, input.c, runtime.path])
      expect(store.isValidPath(p)).toBe(true);
    expect(existsSync(join(out, "partial"))).toBe(true);
    expect(gc.deleted).toContain(input.d);
    expect(gc.removedEntries).toContain(junk);
    expect(existsSync(junk)).toBe(false);
    await expectVerifiesClean(store);

    child.proc.kill("SIGKILL");
    await child.exited;
    const after = await store.collectGarbage();
    expect(after.deleted).toEqual(
      expect.arrayContaining([input.a, input.b, input.c, runtime.path]),
    );
    expect(after.removedEntries).toContain(out);
    expect(existsSync(out)).toBe(false);
    expect(store.queryAllValidPaths()).toEqual([]);
    expect(store.database.prepare("SELECT * FROM TempRoots").all()).toEqual([]);
    expect(store.database.prepare("SELECT * FROM PathLocks").all()).toEqual([]);
    await expectVerifiesClean(store);
  });

  it("finishes deletions a killed collector left, and removes dead writers' temp entries", async () => {
    const store = stores.open();
    const leftover = `${store.storeDir.path}/${Hash.of("sha1", "left").toNix32()}-left`;
    writeFileSync(leftover, "x");
    store.database.prepare("INSERT INTO GcPending (path) VALUES (?)").run(leftover);
    const deadTemp = join(store.layout.realStoreDir, `.nixstate-tmp-${DEAD_OWNER.pid}-1-0`);
    const liveTemp = join(store.layout.realStoreDir, `.nixstate-tmp-${process.pid}-0-999`);
    writeFileSync(deadTemp, "dead");
    writeFileSync(liveTemp, "live"); // start time 0 is not ours: also dead
    const gc = await store.collectGarbage({ runtimeRoots: false });
    expect(gc.removedEntries).toContain(leftover);
    expect(existsSync(leftover)).toBe(false);
    expect(existsSync(deadTemp)).toBe(false);
    expect(store.database.prepare("SELECT * FROM GcPending").all()).toEqual([]);
  });

  it("leaves unknown entries alone in a store directory it did not create", async () => {
    const storeDir = stores.freshDir("shared-store");
    mkdirSync(storeDir);
    const foreign = `${storeDir}/${Hash.of("sha1", "nix").toNix32()}-nix-owned`;
    writeFileSync(foreign, "Nix's");
    const store = stores.open({ storeDir });
    const mine = store.addTextToStore("mine", "m").path;
    const gc = await store.collectGarbage({ runtimeRoots: false });
    expect(gc.deleted).toEqual([mine]);
    expect(existsSync(foreign)).toBe(true);
  });
});

describe("temp roots of added paths", () => {
  it("protect what this process added until it drops them (the default, as in Nix)", async () => {
    const store = temp.open();
    const { a, b, c, d } = chain(store, "auto");
    expect((await store.collectGarbage({ runtimeRoots: false })).deleted).toEqual([]);
    store.removeTempRoots();
    const gc = await store.collectGarbage({ runtimeRoots: false });
    expect(gc.deleted).toEqual([a, b, c, d].sort());
  });
});

describe("deletePath", () => {
  it("deletes a dead path and refuses live or still-referenced ones", async () => {
    const store = stores.open();
    const { a, b, c, d } = chain(store, "del");
    store.addPermRoot(d, "keep-d");
    await expect(store.deletePath(d)).rejects.toThrow(/it is a GC root/);
    await expect(store.deletePath(a)).rejects.toBeInstanceOf(PathInUseError);
    await expect(store.deletePath(a)).rejects.toThrow(/still referenced by/);
    expect((await store.deletePath(c)).deleted).toEqual([c]);
    expect(store.queryAllValidPaths()).toEqual([a, b, d].sort());
    expect(existsSync(store.toRealPath(c))).toBe(false);
    await expectVerifiesClean(store);
  });
});
