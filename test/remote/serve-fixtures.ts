// Shared by the serve-client tests: BasicDerivations that exist only in memory (what
// BuildDerivation sends), and a nixstate store that names its paths like another store.

import { printDerivation } from "../../src/derivation/aterm-print.ts";
import type { BasicDerivation, DerivationOutput } from "../../src/derivation/derivation.ts";
import { derivationPath, fillInOutputPaths } from "../../src/derivation/hash-modulo.ts";
import type { StoreDir } from "../../src/store-path/store-path.ts";

/** A BasicDerivation running `script` under /bin/sh, with its would-be .drv and output path. */
export function basicDrv(
  storeDir: StoreDir,
  name: string,
  script: string,
  options: { system: string; inputSrcs?: string[]; env?: Record<string, string> },
): { drv: BasicDerivation; drvPath: string; out: string } {
  const outputs = new Map<string, DerivationOutput>([["out", { type: "deferred" }]]);
  const env = new Map([
    ["builder", "/bin/sh"],
    ["name", name],
    ["system", options.system],
    ...Object.entries(options.env ?? {}),
  ]);
  const drv = fillInOutputPaths(
    {
      name,
      outputs,
      inputSrcs: [...(options.inputSrcs ?? [])].sort(),
      platform: options.system,
      builder: "/bin/sh",
      args: ["-c", script],
      env,
    },
    storeDir,
    () => {
      throw new Error("a BasicDerivation has no input derivations");
    },
  ) as BasicDerivation;
  const drvPath = derivationPath(drv, printDerivation(drv), storeDir);
  const out = drv.outputs.get("out") as { path: string };
  return { drv, drvPath, out: out.path };
}
