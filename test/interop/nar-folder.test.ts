// Differential test against real Nix 2.8: a binary-cache folder written by `nix copy --to
// file://…?compression=none` substitutes into a nixstate store, and one written by nixstate is
// copied into Nix's store by `nix copy --from`, with the same path infos on both sides.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Worker } from "../../src/machines/worker.ts";
import type { WorkerEffects } from "../../src/machines/worker-effects.ts";
import { LocalStore } from "../../src/store/local-store.ts";
import { pathInfoJson } from "../../src/store/path-info.ts";
import { NarFolderSubstituter } from "../../src/substituters/nar-folder-substituter.ts";
import { writeNarFolder } from "../../src/substituters/nar-folder-writer.ts";
import { LocalSubstitutionEffects } from "../../src/substituters/substitution-effects.ts";
import { haveRealNix, makeNixEnv, type NixEnv } from "./real-nix.ts";

const EXPR = `
let dep = derivation {
  name = "dep"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" "echo dep > $out" ];
};
in derivation {
  name = "top"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" "read -r d < \${dep}; echo \${dep} > $out" ];
}`;

/** Only what substitution must carry over (not registration time, ultimate, signatures). */
function essentials(info: Record<string, unknown>) {
  const { path, narHash, narSize, references, deriver, ca } = info;
  return { path, narHash, narSize, references, deriver, ca };
}

/** The substitution-only effects a worker needs to realise opaque paths. */
function substitutingEffects(store: LocalStore, folder: string): WorkerEffects {
  const never = () => {
    throw new Error("no derivations here");
  };
  return {
    isValidPath: (p) => store.isValidPath(p),
    readDerivation: never,
    queryOutputs: never,
    computeInputPaths: never,
    tryLockOutputs: never,
    runBuild: never,
    substitution: new LocalSubstitutionEffects(store, [
      new NarFolderSubstituter(folder, store.storeDir),
    ]),
  };
}

describe.runIf(haveRealNix())("binary-cache folders with real Nix 2.8", () => {
  let nix: NixEnv;
  beforeAll(() => {
    nix = makeNixEnv();
  });
  afterAll(() => nix.cleanup());

  const pathInfos = (paths: string[]) =>
    (JSON.parse(nix.run("nix", ["path-info", "--json", ...paths])) as Record<string, unknown>[])
      .map(essentials)
      .sort((a, b) => String(a.path).localeCompare(String(b.path)));

  it("substitutes from a cache Nix wrote", async () => {
    const top = nix.run("nix-build", ["--no-out-link", nix.writeExpr("e.nix", EXPR)]).trim();
    const cache = join(nix.root, "nix-cache");
    nix.run("nix", ["copy", "--to", `file://${cache}?compression=none`, top]);

    const store = LocalStore.open({
      stateDir: join(nix.root, "ours-state"),
      storeRoot: join(nix.root, "ours-root"),
      storeDir: nix.storeDir,
    });
    try {
      const worker = new Worker(substitutingEffects(store, cache));
      const [r] = await worker.buildPaths([{ path: top }]);
      expect(r!.status).toBe("Substituted");
      const closure = store.computeFSClosure([top]);
      expect(closure).toHaveLength(2);
      const ours = closure.map((p) => essentials(pathInfoJson(store.queryPathInfo(p))));
      expect(ours).toEqual(pathInfos(closure));
      expect((await store.verifyStore({ checkContents: true })).problems).toEqual([]);
    } finally {
      store.close();
    }
  });

  it("Nix copies from a cache nixstate wrote", async () => {
    const store = LocalStore.open({
      stateDir: join(nix.root, "writer-state"),
      storeRoot: join(nix.root, "writer-root"),
      storeDir: nix.storeDir,
    });
    try {
      const a = store.addTextToStore("a.txt", "A");
      const b = store.addTextToStore("b.txt", `B ${a.path}`, [a.path]);
      const dir = join(nix.root, "tree");
      mkdirSync(join(dir, "bin"), { recursive: true });
      writeFileSync(join(dir, "bin", "run"), "#!/bin/sh\n", { mode: 0o755 });
      const t = await store.addToStore(dir, { name: "tree" });
      const cache = join(nix.root, "our-cache");
      await writeNarFolder(store, cache, [b.path, t.path]);
      nix.run("nix", ["copy", "--no-check-sigs", "--from", `file://${cache}`, b.path, t.path]);
      const paths = [a.path, b.path, t.path].sort();
      const ours = paths.map((p) => essentials(pathInfoJson(store.queryPathInfo(p))));
      expect(pathInfos(paths)).toEqual(ours);
      nix.run("nix-store", ["--verify-path", ...paths]);
    } finally {
      store.close();
    }
  });
});
