// A build through Nix's hook on a nixstate machine: the expression (a "remote" derivation that
// depends on "dep" and says `message` in its log), and what it must leave: the output in Nix's
// chroot store (client) with the dependency's path in it, and valid in the machine's store, with
// its deriver.
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { expect } from "vitest";
import { LocalStore } from "../../src/store/local-store.ts";

export function hookBuildExpr(message: string): string {
  return `let dep = derivation { name = "dep"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo dep > $out" ]; };
     in derivation { name = "remote"; system = builtins.currentSystem; builder = "/bin/sh";
       args = [ "-c" "echo ${message}; echo \${dep} > $out" ]; }`;
}

/** nix-build's arguments: `expr` into the chroot store `client`, built only on `machine`. */
export function hookBuildArgs(expr: string, client: string, machine: string): string[] {
  return [expr, "--no-out-link", "--store", `local?root=${client}`, "-j0", "--builders", machine];
}

export function expectBuiltOnMachine(
  out: string,
  client: string,
  machine: { stateDir: string; storeDir: string },
): void {
  expect(out).toMatch(/-remote$/);
  // Nix 2.8 keeps a chroot store's files under ROOT/nix/store whatever NIX_STORE_DIR says.
  expect(readFileSync(join(client, "nix/store", basename(out)), "utf8")).toMatch(/-dep\n$/);
  const store = LocalStore.open(machine);
  try {
    expect(store.isValidPath(out)).toBe(true);
    expect(store.queryPathInfo(out).deriver).toMatch(/-remote\.drv$/);
  } finally {
    store.close();
  }
}
