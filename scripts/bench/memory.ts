// `npm run bench -- memory [--n 10000] [--rounds 3] [-j 2]`: nixstate's peak RSS building the
// benchmark DAG (every node a target, recording on), fresh state each round; prints each round's
// peak and wall time and the median. The target (issue 13) is ≤ 250 MB at N=10000; Nix 2.8 takes
// ~204 MB there (the dag benchmark measures it, at 160 s a round).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { nixSystem } from "../../src/builder/build-settings.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { LocalStore } from "../../src/store/local-store.ts";
import { argsOf, median, timed } from "./bench-process.ts";
import { writeDag } from "./nixstate-dag.ts";

const repo = resolve(fileURLToPath(import.meta.url), "../../..");

export async function benchMemory(argv: string[]): Promise<void> {
  const arg = argsOf(argv);
  const n = Number(arg("--n", "10000"));
  const rounds = Number(arg("--rounds", "3"));
  const j = Number(arg("-j", "2"));
  const root = mkdtempSync(join(tmpdir(), "nixstate-bench-memory-"));
  console.log(`memory benchmark: N=${n}, -j${j}, ${rounds} rounds`);
  const peaks: number[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      const stateDir = join(root, `r${r}`);
      const store = LocalStore.open({ stateDir });
      const drvs = writeDag(store, n, `mem${r}`, nixSystem());
      store.close();
      const run = await timed(
        process.execPath,
        [join(repo, "bin/nixstate.js"), "build", `-j${j}`, "--state-dir", stateDir, ...drvs],
        process.env,
      );
      if (!run.ok) throw new Error("the build failed");
      peaks.push(run.peakRssMb);
      console.log(
        `  round ${r + 1}: peak RSS ${run.peakRssMb.toFixed(0)} MB, ${(run.ms / 1000).toFixed(1)} s`,
      );
      deleteTree(stateDir);
    }
    console.log(`N=${n}: median peak RSS ${median(peaks).toFixed(0)} MB (target ≤ 250 MB)`);
  } finally {
    deleteTree(root);
  }
}
