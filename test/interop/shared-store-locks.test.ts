// Nix and nixstate building the same derivation in one store (same files, a database each) at
// the same time: both take Nix's flock on `<out>.lock`, so one builds while the other waits.
// When Nix builds first, nixstate then reuses its output (valid in Nix's database, contents
// checked) instead of building again; when nixstate builds first, Nix waits for it.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { repoRoot } from "../vectors.ts";
import { nixString } from "./nix-expr.ts";
import { haveRealNix, makeNixEnv, type NixEnv, nixDbFile } from "./real-nix.ts";

// Each build appends "start <who>" and "end <who>" to a trace file outside the store.
const expr = (trace: string, tag: string) => `
derivation {
  name = "shared-${tag}"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" ${nixString(
    `echo "start $WHO" >> ${trace}; test -e $out.lock && echo "lock file there" >> ${trace}; /bin/sleep 2; echo built > $out; echo "end $WHO" >> ${trace}`,
  )} ];
  impureEnvVars = [ "WHO" ];
  outputHashMode = "flat"; outputHashAlgo = "sha256";
  outputHash = builtins.hashString "sha256" "built\\n";
}
`;

interface Done {
  status: number | null;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Done> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("close", (status) => resolve({ status, stderr }));
  });
}

/** Wait until `who`'s builder has started (it holds the output lock from before then). */
async function started(trace: string, who: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (existsSync(trace) && readFileSync(trace, "utf8").includes(`start ${who}\n`)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${who}'s build did not start within 30 s`);
}

describe.runIf(haveRealNix())("Nix and nixstate in one store at once", () => {
  let nix: NixEnv | undefined;
  let scratch: string | undefined;
  afterAll(() => {
    nix?.cleanup();
    if (scratch) deleteTree(scratch);
  });

  const setup = (tag: string) => {
    nix ??= makeNixEnv();
    scratch ??= mkdtempSync(join(tmpdir(), "nixstate-shared-"));
    const trace = join(scratch, `trace-${tag}`);
    const drv = nix.run("nix-instantiate", [nix.writeExpr(`${tag}.nix`, expr(trace, tag))]).trim();
    const out = nix.run("nix-store", ["-q", "--outputs", drv]).trim();
    // nixstate on the very same store files, with its own state directory.
    const ours = (who: string) =>
      run(
        process.execPath,
        [
          join(repoRoot, "bin/nixstate.js"),
          "build",
          "--store-dir",
          nix!.storeDir,
          "--state-dir",
          join(scratch!, `state-${tag}`),
          "--nix-db",
          nixDbFile(nix!),
          drv,
        ],
        { ...process.env, NIX_STATE_DIR: "", WHO: who },
      );
    const theirs = (who: string) => run("nix-store", ["--realise", drv], { ...nix!.env, WHO: who });
    return { trace, drv, out, ours, theirs };
  };

  it("Nix builds first: nixstate waits on the lock, then reuses Nix's output", async () => {
    const s = setup("nixfirst");
    const nixBuild = s.theirs("nix");
    await started(s.trace, "nix");
    const ourBuild = s.ours("nixstate");
    const [n, o] = await Promise.all([nixBuild, ourBuild]);
    expect(n.status, n.stderr).toBe(0);
    expect(o.status, o.stderr).toBe(0);
    // One build only, and it saw its lock file.
    expect(readFileSync(s.trace, "utf8")).toBe("start nix\nlock file there\nend nix\n");
    expect(readFileSync(s.out, "utf8")).toBe("built\n");
    expect(existsSync(`${s.out}.lock`)).toBe(false);
  }, 60_000);

  it("nixstate builds first: Nix waits for its lock, and nixstate's builder finds $out.lock", async () => {
    const s = setup("oursfirst");
    const ourBuild = s.ours("nixstate");
    await started(s.trace, "nixstate");
    const nixBuild = s.theirs("nix");
    const [o, n] = await Promise.all([ourBuild, nixBuild]);
    expect(o.status, o.stderr).toBe(0);
    expect(n.status, n.stderr).toBe(0);
    expect(n.stderr).toContain(`waiting for lock on '${s.out}'`);
    // Nix only started once nixstate's build had ended (it does not know nixstate's database,
    // so it builds again, after the lock is free).
    const lines = readFileSync(s.trace, "utf8").split("\n").filter(Boolean);
    expect(lines.slice(0, 3)).toEqual(["start nixstate", "lock file there", "end nixstate"]);
    expect(lines.slice(3).filter((l) => l.startsWith("start") || l.startsWith("end"))).toEqual(
      lines.includes("start nix") ? ["start nix", "end nix"] : [],
    );
    expect(statSync(s.out).isFile()).toBe(true);
  }, 60_000);
});
