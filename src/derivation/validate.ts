// Checks that need no input derivations: is this a derivation Nix 2.8 could have written?
import { makeFixedOutputPath } from "../store-path/make-store-path.ts";
import { checkStorePathName, type StoreDir, StorePathError } from "../store-path/store-path.ts";
import type { BasicDerivation, Derivation } from "./derivation.ts";
import { DerivationError } from "./errors.ts";

const OUTPUT_NAME = /^[0-9a-zA-Z+\-._?=]+$/;

export function validateDerivation(
  drv: BasicDerivation,
  storeDir: StoreDir,
  source = drv.name,
): void {
  const fail = (msg: string): never => {
    throw new DerivationError(`derivation '${source}': ${msg}`);
  };
  try {
    checkStorePathName(drv.name, `name of derivation '${source}'`);
  } catch (e) {
    if (e instanceof StorePathError) fail(e.message);
    throw e;
  }
  if (drv.name.endsWith(".drv")) fail(`its name '${drv.name}' must not end in '.drv'`);
  if (drv.outputs.size === 0) fail("it has no outputs; a derivation needs at least one");
  const kinds = new Set([...drv.outputs.values()].map((o) => o.type));
  if (kinds.size > 1)
    fail(`it mixes output kinds (${[...kinds].join(", ")}); all outputs must be of one kind`);
  for (const [name, o] of drv.outputs) {
    if (!OUTPUT_NAME.test(name) || name === "drv") fail(`invalid output name '${name}'`);
    if (o.type !== "fixed") continue;
    if (drv.outputs.size !== 1 || name !== "out") {
      fail("a fixed-output derivation must have exactly one output, named 'out'");
    }
    const expected = storeDir.print(makeFixedOutputPath(storeDir, drv.name, o.method, o.hash));
    if (o.path !== expected) fail(`has incorrect output '${o.path}', should be '${expected}'`);
  }
  if (/["\\\n\r\t]/.test(drv.platform)) fail(`invalid system type ${JSON.stringify(drv.platform)}`);
  const paths = [
    ...drv.inputSrcs,
    ...((drv as Partial<Derivation>).inputDrvs?.keys() ?? []),
    ...[...drv.outputs.values()].flatMap((o) => (o.type === "deferred" ? [] : [o.path])),
  ];
  for (const p of paths) {
    try {
      storeDir.parsePath(p);
    } catch (e) {
      if (e instanceof StorePathError) fail(e.message);
      throw e;
    }
  }
}
