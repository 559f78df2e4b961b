// Differential test against real Nix 2.8: paths built by Nix and imported into a nixstate store
// (by `nix-store --export` → our import, by `nix-store --dump` + Nix's path info → our
// importPath, by `add-drv` from Nix's database) must show the same NAR hashes, sizes, references
// and closures as `nix path-info --json` and `nix-store -q`; our export must import into Nix.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Hash } from "../../src/hash/hash.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { LocalStore } from "../../src/store/local-store.ts";
import { runCli } from "../cli/run-cli.ts";
import { haveRealNix, makeNixEnv, type NixEnv } from "./real-nix.ts";

interface NixPathInfo {
  path: string;
  narHash: string;
  narSize: number;
  references: string[];
  ca?: string;
  deriver?: string;
  registrationTime?: number;
  ultimate?: boolean;
}

const EXPR = `
let
  greeting = builtins.toFile "greeting.txt" "hello";
  dep = derivation {
    name = "dep"; system = builtins.currentSystem; builder = "/bin/sh";
    args = [ "-c" "echo dep > $out" ];
  };
in derivation {
  name = "main"; system = builtins.currentSystem; builder = "/bin/sh";
  PATH = "/usr/bin:/bin";
  # A text source with a reference: only Nix's database tells its path info.
  BAZ = builtins.toFile "baz.txt" "see \${greeting}";
  outputs = [ "out" "dev" ];
  args = [ "-c" "mkdir -p $out/bin; ln -s \${greeting} $out/g; echo \${dep} > $out/ref; printf '#!/bin/sh\\\\necho hi\\\\n' > $out/bin/hi; chmod +x $out/bin/hi; echo $out > $dev" ];
}
`;

describe.runIf(haveRealNix())("store interop with real Nix 2.8", () => {
  let nix: NixEnv;
  let scratch: string;
  let out: string;
  let dev: string;
  let drv: string;
  let closure: string[];
  /** The closure as nix-store -qR prints it: dependencies first. */
  let closureOrder: string[];
  let nixInfo: NixPathInfo[];

  const nixPathInfo = (paths: string[], extra: string[] = []): NixPathInfo[] =>
    JSON.parse(nix.run("nix", ["path-info", "--json", ...extra, ...paths]));
  const lines = (s: string | Buffer) => s.toString().split("\n").filter(Boolean);

  /** A nixstate store whose paths are named like Nix's but whose files live elsewhere. */
  function ourStoreArgs(label: string): string[] {
    return [
      "--store-dir",
      nix.storeDir,
      "--store-root",
      join(scratch, `${label}-root`),
      "--state-dir",
      join(scratch, `${label}-state`),
    ];
  }
  function openOurs(label: string): LocalStore {
    return LocalStore.open({
      storeDir: nix.storeDir,
      storeRoot: join(scratch, `${label}-root`),
      stateDir: join(scratch, `${label}-state`),
    });
  }
  function cli(label: string, args: string[], input?: Buffer) {
    const [command, ...rest] = args;
    const r = runCli(["store", command!, ...ourStoreArgs(label), ...rest], { input });
    if (r.status !== 0) throw new Error(`nixstate store ${args.join(" ")} failed: ${r.stderr}`);
    return r.stdout;
  }

  beforeAll(() => {
    nix = makeNixEnv();
    scratch = mkdtempSync(join(tmpdir(), "nixstate-store-interop-"));
    const expr = nix.writeExpr("main.nix", EXPR);
    drv = nix.run("nix-instantiate", [expr]).trim();
    const outputs = lines(nix.run("nix-store", ["--realise", drv])).sort();
    out = outputs.find((p) => p.endsWith("-main"))!;
    dev = outputs.find((p) => p.endsWith("-main-dev"))!;
    closureOrder = lines(nix.run("nix-store", ["-qR", out]));
    closure = [...closureOrder].sort();
    nixInfo = nixPathInfo([out], ["-r"]);
  });

  afterAll(() => {
    nix?.cleanup();
    if (scratch) deleteTree(scratch);
  });

  it("nix-store --export → nixstate import: same hashes, sizes, references, derivers, closures", () => {
    const imported = lines(
      cli("export", ["import"], nix.runBuffer("nix-store", ["--export", ...closure])),
    );
    expect(imported.sort()).toEqual(closure);
    const ours: NixPathInfo[] = JSON.parse(
      cli("export", ["path-info", "--json", "-r", out]).toString(),
    );
    const strip = ({ path, narHash, narSize, references, deriver }: NixPathInfo) => ({
      path,
      narHash,
      narSize,
      references,
      deriver,
    });
    expect(ours.map(strip)).toEqual(nixInfo.map(strip));
    expect(lines(cli("export", ["query", "-R", out])).sort()).toEqual(closure);
    const store = openOurs("export");
    try {
      for (const p of closure) {
        const nixQuery = (q: string) => lines(nix.run("nix-store", ["-q", q, p]));
        expect(store.queryReferences(p)).toEqual(nixQuery("--references"));
        // Nix's store also holds main-dev (a referrer of main), which was not imported.
        expect(store.queryReferrers(p)).toEqual(
          nixQuery("--referrers").filter((x) => closure.includes(x)),
        );
        expect([store.queryPathInfo(p).deriver ?? "unknown-deriver"]).toEqual(
          nixQuery("--deriver"),
        );
      }
    } finally {
      store.close();
    }
    // Dependencies first, as nix-store -qR prints them.
    const order = lines(cli("export", ["query", "-R", out]));
    expect(order.indexOf(out)).toBe(order.length - 1);
    expect(cli("export", ["verify"]).toString()).toBe("");
  });

  it("nix-store --dump + Nix's path info → importPath: identical path-info JSON", async () => {
    const store = openOurs("dump");
    try {
      const infos = new Map(nixPathInfo(closure).map((i) => [i.path, i]));
      for (const info of closureOrder.map((p) => infos.get(p)!)) {
        const nar = nix.runBuffer("nix-store", ["--dump", info.path]);
        await store.importPath(
          {
            path: info.path,
            narHash: Hash.parse(info.narHash),
            narSize: info.narSize,
            references: info.references,
            deriver: info.deriver,
            ca: info.ca,
            ultimate: info.ultimate ?? false,
            registrationTime: info.registrationTime,
          },
          [nar],
        );
      }
    } finally {
      store.close();
    }
    const ours = JSON.parse(cli("dump", ["path-info", "--json", "-r", out]).toString());
    expect(ours).toEqual(nixInfo);
    const withSize = JSON.parse(
      cli("dump", ["path-info", "--json", "--closure-size", out]).toString(),
    );
    expect(withSize).toEqual(nixPathInfo([out], ["--closure-size"]));
  });

  it("add-drv imports a .drv closure with Nix's recorded path infos", () => {
    const guessed = runCli(["store", "add-drv", ...ourStoreArgs("nodb"), drv]);
    expect(guessed.status).toBe(1);
    expect(guessed.stderr).toMatch(
      /baz\.txt.*without Nix's database; give it to 'nixstate build' or 'nixstate store add-drv' with --nix-db/,
    );
    const nixDb = join(nix.root, "var", "db", "db.sqlite");
    expect(lines(cli("drv", ["add-drv", "--nix-db", nixDb, drv]))).toEqual([drv]);
    const drvClosure = lines(nix.run("nix-store", ["-qR", drv])).sort();
    expect(lines(cli("drv", ["query", "-R", drv])).sort()).toEqual(drvClosure);
    const ours: NixPathInfo[] = JSON.parse(
      cli("drv", ["path-info", "--json", "-r", drv]).toString(),
    );
    const theirs = nixPathInfo([drv], ["-r", "--derivation"]);
    const strip = ({ path, narHash, narSize, references, ca }: NixPathInfo) => ({
      path,
      narHash,
      narSize,
      references,
      ca,
    });
    expect(ours.map(strip)).toEqual(theirs.map(strip));
    expect(lines(cli("drv", ["query", "--outputs", drv])).sort()).toEqual([dev, out].sort());
  });

  it("adds a tree under the same name and NAR hash as nix-store --add", async () => {
    const src = join(scratch, "tree");
    mkdirSync(join(src, "d"), { recursive: true });
    writeFileSync(join(src, "d", "x"), "x");
    writeFileSync(join(src, "run"), "#!/bin/sh\n", { mode: 0o755 });
    const theirs = nix.run("nix-store", ["--add", src]).trim();
    const ours = lines(cli("add", ["add", src]));
    expect(ours).toEqual([theirs]);
    const [a] = JSON.parse(cli("add", ["path-info", "--json", theirs]).toString());
    const [b] = nixPathInfo([theirs]);
    expect({ ...a, registrationTime: 0 }).toEqual({ ...b, registrationTime: 0 });
  });

  it("real Nix imports what nixstate exports", () => {
    const exported = cli("export", ["export", ...closure]);
    const root = join(scratch, "nix-import-root");
    const storeArg = `local?root=${root}`;
    nix.runBuffer("nix-store", ["--store", storeArg, "--import"], exported);
    const theirs: NixPathInfo[] = JSON.parse(
      nix.run("nix", ["path-info", "--store", storeArg, "--json", "-r", out]),
    );
    const strip = ({ path, narHash, narSize, references, deriver }: NixPathInfo) => ({
      path,
      narHash,
      narSize,
      references,
      deriver,
    });
    expect(theirs.map(strip)).toEqual(nixInfo.map(strip));
  });
});
