// A local store realising paths from a NAR folder through the worker's substitution goals:
// the same code path `nixstate build` takes once LocalBuildEffects provides `substitution`.
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LocalBuildEffects } from "../../src/builder/local-build-effects.ts";
import { Hash } from "../../src/hash/hash.ts";
import { Worker, type WorkerSettings } from "../../src/machines/worker.ts";
import { regularFileNar } from "../../src/nar/nar-dump.ts";
import { regularFileNarHash } from "../../src/nar/nar-hash.ts";
import type { LocalStore } from "../../src/store/local-store.ts";
import { NarFolderSubstituter } from "../../src/substituters/nar-folder-substituter.ts";
import { writeNarFolder } from "../../src/substituters/nar-folder-writer.ts";
import { makeDrv, outPath } from "../builder/make-drv.ts";
import { useTempStores } from "../store/temp-store.ts";

const stores = useTempStores();

/** A store under its own root with the logical store dir /nix/store, so paths agree across stores. */
const chrootStore = () => stores.open({ storeRoot: stores.freshDir("root") });

/** Register `contents` as the output `path` without building it. */
async function placeOutput(
  store: LocalStore,
  path: string,
  contents: string,
  references: string[],
  deriver: string,
): Promise<void> {
  const bytes = Buffer.from(contents);
  const nar = regularFileNarHash(bytes);
  await store.importPath(
    { path, narHash: new Hash("sha256", nar.hash), narSize: nar.size, references, deriver },
    regularFileNar(bytes),
  );
}

/** Derivations whose builders fail: `top` depends on `dep` and its output refers to dep's. */
function drvs(store: LocalStore) {
  const dep = makeDrv(store, { name: "dep", script: "exit 1" });
  const top = makeDrv(store, {
    name: "top",
    deps: [dep.drvPath],
    env: { dep: outPath(dep.drv) },
    script: "exit 1",
  });
  return { dep, top, depOut: outPath(dep.drv), topOut: outPath(top.drv) };
}

/** A NAR folder holding the outputs of `top` and `dep`, written from another store. */
async function cacheWithOutputs(): Promise<{ folder: string; topContents: string }> {
  const source = chrootStore();
  const { dep, top, depOut, topOut } = drvs(source);
  await placeOutput(source, depOut, "dep\n", [], dep.drvPath);
  const topContents = `top uses ${depOut}\n`;
  await placeOutput(source, topOut, topContents, [depOut], top.drvPath);
  const folder = stores.freshDir("cache");
  expect(await writeNarFolder(source, folder, [topOut])).toEqual([depOut, topOut]);
  return { folder, topContents };
}

/** A worker on `store` whose only substituter is the folder. */
function workerFor(store: LocalStore, folder: string, work: Partial<WorkerSettings> = {}) {
  const effects = new LocalBuildEffects(store, { system: "x86_64-linux" }, [
    new NarFolderSubstituter(folder, store.storeDir),
  ]);
  return {
    worker: new Worker(effects, { maxJobs: 1, ...work }),
    substitution: effects.substitution!,
  };
}

function setup(folder: string) {
  const store = chrootStore();
  return { store, ...workerFor(store, folder), ...drvs(store) };
}

describe("substitution into a local store", () => {
  it("realises a derivation's outputs from a NAR folder instead of building", async () => {
    const { folder, topContents } = await cacheWithOutputs();
    const { store, worker, top, depOut, topOut } = setup(folder);
    const [r] = await worker.buildPaths([{ drvPath: top.drvPath, outputs: [] }]);
    expect(r!.status).toBe("Substituted");
    expect(r!.builtOutputs.out?.outPath).toBe(topOut);
    expect(readFileSync(store.toRealPath(topOut), "utf8")).toBe(topContents);
    const info = store.queryPathInfo(topOut);
    expect(info.references).toEqual([depOut]);
    expect(info.deriver).toBe(top.drvPath);
    expect(info.ultimate).toBe(false);
    expect(store.isValidPath(depOut)).toBe(true);
    // The builder (`exit 1`) never ran: it leaves no log.
    expect(readdirSync(store.layout.logDir)).toEqual([]);
  });

  it("a corrupt NAR: TransientFailure, nothing registered, nothing left in the store", async () => {
    const { folder } = await cacheWithOutputs();
    const { store, worker, top, topOut } = setup(folder);
    const info = readFileSync(
      join(folder, `${store.parseStorePath(topOut).hashPart}.narinfo`),
      "utf8",
    );
    const nar = join(folder, /URL: (.*)/.exec(info)![1]!);
    const bytes = readFileSync(nar);
    bytes[bytes.indexOf("top uses")] = "T".charCodeAt(0); // same size, other contents
    writeFileSync(nar, bytes);
    const [r] = await worker.buildPaths([{ drvPath: top.drvPath, outputs: [] }]);
    expect(r!.status).toBe("TransientFailure");
    expect(r!.errorMsg).toContain(
      `some substitutes for the outputs of derivation '${top.drvPath}'`,
    );
    expect(store.isValidPath(topOut)).toBe(false);
    expect(existsSync(store.toRealPath(topOut))).toBe(false);
    const leftovers = readdirSync(store.layout.realStoreDir).filter(
      (f) => !f.endsWith(".drv") && !f.endsWith("-dep") && !f.startsWith("."),
    );
    expect(leftovers).toEqual([]);
    expect(store.database.prepare("SELECT count(*) AS n FROM PathLocks").get()).toEqual({ n: 0 });
  });

  it("repair replaces a valid path's corrupt contents from the substituter", async () => {
    const { folder, topContents } = await cacheWithOutputs();
    const { store, worker, top, topOut } = setup(folder);
    expect((await worker.buildPaths([{ drvPath: top.drvPath, outputs: [] }]))[0]!.status).toBe(
      "Substituted",
    );
    const real = store.toRealPath(topOut);
    chmodSync(real, 0o644);
    writeFileSync(real, "corrupt");
    const { worker: repairer } = workerFor(store, folder);
    const [r] = await repairer.buildPaths([{ drvPath: top.drvPath, outputs: [] }], "repair");
    expect(r!.status).toBe("AlreadyValid");
    expect(readFileSync(real, "utf8")).toBe(topContents);
  });

  it("a NAR that vanished is 'gone'; a cancelled download registers nothing", async () => {
    const { folder } = await cacheWithOutputs();
    const { store, substitution, depOut } = setup(folder);
    const info = (await substitution.queryPathInfo(0, depOut))!;
    const aborted = new AbortController();
    aborted.abort();
    await expect(substitution.importPath(0, info, false, aborted.signal)).rejects.toThrow(
      "cancelled",
    );
    expect(store.isValidPath(depOut)).toBe(false);
    rmSync(join(folder, "nar"), { recursive: true });
    expect(await substitution.importPath(0, info, false, new AbortController().signal)).toBe(
      "gone",
    );
  });
});
