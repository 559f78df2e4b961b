import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readBuildLog } from "../../src/builder/build-log.ts";
import type { LocalBuildSettings } from "../../src/builder/build-settings.ts";
import { LocalBuildEffects } from "../../src/builder/local-build-effects.ts";
import { Hash } from "../../src/hash/hash.ts";
import { Worker, type WorkerSettings } from "../../src/machines/worker.ts";
import { narHash } from "../../src/nar/nar-hash.ts";
import { useTempStores } from "../store/temp-store.ts";
import { haveSandbox } from "./have-sandbox.ts";
import { makeDrv, outPath } from "./make-drv.ts";

const stores = useTempStores();

function setup(build: Partial<LocalBuildSettings> = {}, work: Partial<WorkerSettings> = {}) {
  const store = stores.open();
  const effects = new LocalBuildEffects(store, { system: "x86_64-linux", ...build });
  const worker = new Worker(effects, { maxJobs: 2, useSubstitutes: false, ...work });
  return { store, effects, worker };
}

describe("local builds", () => {
  it("builds a DAG, registers outputs with scanned references and NAR hashes", async () => {
    const { store, worker } = setup();
    const a = makeDrv(store, { name: "a", script: "echo a > $out" });
    const b = makeDrv(store, {
      name: "b",
      deps: [a.drvPath],
      env: { a: outPath(a.drv) },
      outputs: ["out", "dev"],
      script: "/bin/mkdir $out; echo $a > $out/ref; echo $out > $dev; echo building b",
    });
    const [r] = await worker.buildPaths([{ drvPath: b.drvPath, outputs: [] }]);
    expect(r!.status).toBe("Built");
    const bOut = outPath(b.drv);
    expect(readFileSync(`${store.toRealPath(bOut)}/ref`, "utf8")).toBe(`${outPath(a.drv)}\n`);
    const info = store.queryPathInfo(bOut);
    expect(info.references).toEqual([outPath(a.drv)]);
    expect(info.deriver).toBe(b.drvPath);
    expect(info.ultimate).toBe(true);
    expect(info.narHash.digest.equals((await narHash(store.toRealPath(bOut))).hash)).toBe(true);
    // The dev output refers to the out output.
    expect(store.queryPathInfo(outPath(b.drv, "dev")).references).toEqual([bOut]);
    expect(readBuildLog(store.layout.logDir, b.drvPath)?.toString()).toBe("building b\n");
    expect(r!.builtOutputs.out!.id).toMatch(/^sha256:[0-9a-f]{64}!out$/);
    expect(readdirSync(store.layout.realStoreDir).filter((f) => f.endsWith(".lock"))).toEqual([]);
  });

  it("gives an output file hard-linked from outside a copy of its own before making it read-only", async () => {
    const { store, worker } = setup();
    const outside = join(stores.root, `linked-${Date.now()}`);
    mkdirSync(outside);
    writeFileSync(join(outside, "shared"), "shared bytes\n");
    chmodSync(join(outside, "shared"), 0o644);
    const d = makeDrv(store, {
      name: "linked",
      script: `/bin/mkdir $out; /bin/ln ${outside}/shared $out/shared; echo own > $out/own`,
    });
    const [r] = await worker.buildPaths([{ drvPath: d.drvPath, outputs: [] }]);
    expect(r!.status).toBe("Built");
    const out = store.toRealPath(outPath(d.drv));
    expect(readFileSync(join(out, "shared"), "utf8")).toBe("shared bytes\n");
    expect(statSync(join(out, "shared")).nlink).toBe(1);
    expect(statSync(join(out, "shared")).mode & 0o777).toBe(0o444);
    expect(statSync(join(out, "shared")).mtimeMs).toBe(1000);
    // The file outside is untouched: still writable, still its own mtime.
    expect(statSync(join(outside, "shared")).mode & 0o777).toBe(0o644);
    expect(statSync(join(outside, "shared")).mtimeMs).not.toBe(1000);
    expect(
      store.queryPathInfo(outPath(d.drv)).narHash.digest.equals((await narHash(out)).hash),
    ).toBe(true);
  });

  it("a failing builder leaves no output, no lock, and quotes the log", async () => {
    const { store, worker } = setup();
    const f = makeDrv(store, { name: "f", script: "/bin/mkdir $out; echo oops; exit 3" });
    const [r] = await worker.buildPaths([{ drvPath: f.drvPath, outputs: [] }]);
    expect(r!.status).toBe("PermanentFailure");
    expect(r!.errorMsg).toContain(`builder for '${f.drvPath}' failed with exit code 3`);
    expect(r!.errorMsg).toContain("> oops");
    expect(worker.exitStatus()).toBe(100);
    expect(store.isValidPath(outPath(f.drv))).toBe(false);
    expect(existsSync(store.toRealPath(outPath(f.drv)))).toBe(false);
    // Nix's lock file too is gone by the time buildPaths returns.
    expect(existsSync(`${store.toRealPath(outPath(f.drv))}.lock`)).toBe(false);
    expect(store.database.prepare("SELECT count(*) AS n FROM PathLocks").get()).toEqual({ n: 0 });
  });

  it("removes what a crashed build left at an invalid output before building it", async () => {
    const { store, worker } = setup();
    const d = makeDrv(store, { name: "s", script: "/bin/mkdir $out; echo fresh > $out/f" });
    // A directory (read-only, as a store path) and a dangling link, as a killed build leaves.
    const real = store.toRealPath(outPath(d.drv));
    mkdirSync(`${real}/sub`, { recursive: true });
    symlinkSync("/nonexistent", `${real}/sub/link`);
    chmodSync(`${real}/sub`, 0o555);
    const [r] = await worker.buildPaths([{ drvPath: d.drvPath, outputs: [] }]);
    expect(r!.status).toBe("Built");
    expect(readdirSync(real)).toEqual(["f"]);
    expect(readFileSync(`${real}/f`, "utf8")).toBe("fresh\n");
  });

  it("checks fixed-output hashes: match builds, mismatch is exit 102 with Nix's message", async () => {
    const { store, worker } = setup();
    const good = makeDrv(store, {
      name: "fod",
      script: "printf hi > $out",
      fixed: { method: "flat", hash: Hash.of("sha256", "hi") },
    });
    expect((await worker.buildPaths([{ drvPath: good.drvPath, outputs: [] }]))[0]!.status).toBe(
      "Built",
    );
    expect(store.queryPathInfo(outPath(good.drv)).ca).toBe(
      `fixed:${Hash.of("sha256", "hi").toString()}`,
    );
    const w2 = new Worker(new LocalBuildEffects(store, { system: "x86_64-linux" }), {
      useSubstitutes: false,
    });
    const bad = makeDrv(store, {
      name: "fod2",
      script: "printf ho > $out",
      fixed: { method: "flat", hash: Hash.of("sha256", "hi") },
    });
    const [r] = await w2.buildPaths([{ drvPath: bad.drvPath, outputs: [] }]);
    expect(r!.status).toBe("OutputRejected");
    expect(r!.errorMsg).toBe(
      `hash mismatch in fixed-output derivation '${bad.drvPath}':\n  specified: ${Hash.of("sha256", "hi").toSri()}\n     got:    ${Hash.of("sha256", "ho").toSri()}`,
    );
    expect(w2.exitStatus()).toBe(102);
    expect(store.isValidPath(outPath(bad.drv))).toBe(false);
  });

  it("enforces allowedReferences (OutputRejected, exit 1 as Nix 2.8)", async () => {
    const { store, worker } = setup();
    const dep = makeDrv(store, { name: "dep", script: "echo > $out" });
    const user = makeDrv(store, {
      name: "user",
      deps: [dep.drvPath],
      env: { d: outPath(dep.drv), allowedReferences: "" },
      script: "echo $d > $out",
    });
    const [r] = await worker.buildPaths([{ drvPath: user.drvPath, outputs: [] }]);
    expect(r!.status).toBe("OutputRejected");
    expect(r!.errorMsg).toBe(
      `output '${outPath(user.drv)}' is not allowed to refer to the following paths:\n  ${outPath(dep.drv)}`,
    );
    expect(worker.exitStatus()).toBe(1);
    expect(store.isValidPath(outPath(user.drv))).toBe(false);
  });

  it("kills a silent builder with --max-silent-time: TimedOut, exit 101", async () => {
    const { store, worker } = setup({ maxSilentTime: 1 });
    const s = makeDrv(store, {
      name: "silent",
      script: "/bin/sleep 20 & /bin/sleep 20; echo > $out",
    });
    const t0 = Date.now();
    const [r] = await worker.buildPaths([{ drvPath: s.drvPath, outputs: [] }]);
    expect(r!.status).toBe("TimedOut");
    expect(r!.errorMsg).toBe(
      `building of '${s.drvPath}!*' from .drv file timed out after 1 seconds of silence`,
    );
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(worker.exitStatus()).toBe(101);
    expect(store.isValidPath(outPath(s.drv))).toBe(false);
    expect(existsSync(store.toRealPath(outPath(s.drv)))).toBe(false);
    expect(store.database.prepare("SELECT count(*) AS n FROM PathLocks").get()).toEqual({ n: 0 });
  });

  it("check mode: a deterministic rebuild passes, a non-deterministic one is exit 104", async () => {
    const { store, worker } = setup();
    const det = makeDrv(store, { name: "det", script: "echo same > $out" });
    const rnd = makeDrv(store, {
      name: "rnd",
      script: "/bin/cat /proc/sys/kernel/random/uuid > $out",
    });
    await worker.buildPaths([
      { drvPath: det.drvPath, outputs: [] },
      { drvPath: rnd.drvPath, outputs: [] },
    ]);
    const w2 = new Worker(new LocalBuildEffects(store, { system: "x86_64-linux" }), {
      useSubstitutes: false,
      keepGoing: true,
    });
    const [a, b] = await w2.buildPaths(
      [
        { drvPath: det.drvPath, outputs: [] },
        { drvPath: rnd.drvPath, outputs: [] },
      ],
      "check",
    );
    expect(a!.status).toBe("Built");
    expect(b!.status).toBe("NotDeterministic");
    expect(b!.errorMsg).toMatch(
      /may not be deterministic: output '.*-rnd' differs from '.*-rnd\.check'/,
    );
    expect(w2.exitStatus()).toBe(104);
  });

  it("builds an in-memory BasicDerivation without any .drv file", async () => {
    const { store, worker } = setup();
    const dep = makeDrv(store, { name: "dep", script: "echo dep > $out" });
    await worker.buildPaths([{ drvPath: dep.drvPath, outputs: [] }]);
    const m = makeDrv(store, {
      name: "mem",
      deps: [dep.drvPath],
      env: { d: outPath(dep.drv) },
      script: "/bin/cat $d > $out",
    });
    // Pretend it arrived over the wire: inputs as sources, no inputDrvs, and no .drv in the store.
    const basic = { ...m.drv, inputSrcs: [outPath(dep.drv)] } as Partial<typeof m.drv>;
    delete basic.inputDrvs;
    const fakeDrvPath = m.drvPath.replace(/-mem\.drv$/, "-memx.drv");
    const r = await worker.buildDerivation(fakeDrvPath, basic as typeof m.drv);
    expect(r.status).toBe("Built");
    expect(readFileSync(store.toRealPath(outPath(m.drv)), "utf8")).toBe("dep\n");
    expect(store.isValidPath(fakeDrvPath)).toBe(false);
  });

  it("refuses a derivation for another platform with Nix's message", async () => {
    const { store, worker } = setup();
    const d = makeDrv(store, { name: "arm", script: "echo > $out", system: "aarch64-darwin" });
    const [r] = await worker.buildPaths([{ drvPath: d.drvPath, outputs: [] }]);
    expect(r!.status).toBe("MiscFailure");
    expect(r!.errorMsg).toMatch(
      /^a 'aarch64-darwin' with features \{\} is required to build '.*', but I am a 'x86_64-linux'/,
    );
  });

  it("cleans up build directories", async () => {
    const { store, worker, effects } = setup();
    const root = stores.freshDir("builds");
    (effects.settings as { buildDirRoot?: string }).buildDirRoot = root;
    (await import("node:fs")).mkdirSync(root);
    const d = makeDrv(store, {
      name: "tmp",
      script: 'echo $NIX_BUILD_TOP > $out; test "$PWD" = "$TMPDIR"',
    });
    const [r] = await worker.buildPaths([{ drvPath: d.drvPath, outputs: [] }]);
    expect(r!.status).toBe("Built");
    await effects.drain();
    expect(readdirSync(root)).toEqual([]);
  });

  it("repair mode rebuilds an output whose contents were corrupted", async () => {
    const { store, worker } = setup();
    const d = makeDrv(store, { name: "fragile", script: "echo precious > $out" });
    await worker.buildPaths([{ drvPath: d.drvPath, outputs: [] }]);
    const real = store.toRealPath(outPath(d.drv));
    chmodSync(real, 0o644);
    writeFileSync(real, "garbage\n");
    const w2 = new Worker(new LocalBuildEffects(store, { system: "x86_64-linux" }), {
      useSubstitutes: false,
    });
    const [normal] = await w2.buildPaths([{ drvPath: d.drvPath, outputs: [] }]);
    expect(normal!.status).toBe("AlreadyValid");
    const [r] = await w2.buildPaths([{ drvPath: d.drvPath, outputs: [] }], "repair");
    expect(r!.status).toBe("Built");
    expect(readFileSync(real, "utf8")).toBe("precious\n");
    expect((await store.verifyStore()).problems).toEqual([]);
  });
});

describe.runIf(haveSandbox())("sandboxed builds (bubblewrap)", () => {
  it("sees only its inputs and system paths, cannot write inputs, and produces registered outputs", async () => {
    const { store, worker, effects } = setup({ sandbox: true });
    const dep = makeDrv(store, { name: "dep", script: "echo dep > $out" });
    const other = makeDrv(store, { name: "other", script: "echo other > $out" });
    await worker.buildPaths([
      { drvPath: dep.drvPath, outputs: [] },
      { drvPath: other.drvPath, outputs: [] },
    ]);
    const probe = makeDrv(store, {
      name: "probe",
      deps: [dep.drvPath],
      env: { d: outPath(dep.drv), o: outPath(other.drv) },
      script: [
        "/bin/mkdir $out",
        "/bin/cat $d > $out/dep",
        "test -e $o && echo visible > $out/other || echo hidden > $out/other",
        "test -e /etc/hostname && echo visible > $out/etc || echo hidden > $out/etc",
        "(echo x > $d) 2>/dev/null && echo writable > $out/input || echo read-only > $out/input",
        "echo $PWD > $out/pwd",
        "echo $d > $out/ref",
      ].join("\n"),
    });
    const [r] = await worker.buildPaths([{ drvPath: probe.drvPath, outputs: [] }]);
    expect(r!.status, r!.errorMsg).toBe("Built");
    const out = store.toRealPath(outPath(probe.drv));
    const read = (f: string) => readFileSync(`${out}/${f}`, "utf8").trim();
    expect(read("dep")).toBe("dep");
    expect(read("other")).toBe("hidden");
    expect(read("etc")).toBe("hidden");
    expect(read("input")).toBe("read-only");
    expect(read("pwd")).toBe("/build");
    expect(store.queryPathInfo(outPath(probe.drv)).references).toEqual([outPath(dep.drv)]);
    // Nothing of the sandbox's private store is left in the store directory.
    await effects.drain();
    expect(
      readdirSync(store.layout.realStoreDir).filter((n) => n.startsWith(".nixstate-tmp-")),
    ).toEqual([]);
  });
});
