// `nixstate store …` driven as a user would, in a temp state dir.
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { printDerivation } from "../../src/derivation/aterm-print.ts";
import type { Derivation } from "../../src/derivation/derivation.ts";
import { derivationPath, fillInOutputPaths } from "../../src/derivation/hash-modulo.ts";
import { Hash } from "../../src/hash/hash.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { makeTextPath } from "../../src/store-path/make-store-path.ts";
import { StoreDir } from "../../src/store-path/store-path.ts";
import { runCli } from "./run-cli.ts";

const dir = mkdtempSync(join(tmpdir(), "nixstate-store-cli-"));
afterAll(() => deleteTree(dir));
const env = { NIXSTATE_STATE_DIR: join(dir, "state") };
const store = (args: string[], input?: Buffer) => runCli(["store", ...args], { env, input });

describe("nixstate store", () => {
  it("adds, describes, queries, exports, collects and verifies", () => {
    const src = join(dir, "src");
    mkdirSync(src);
    writeFileSync(join(src, "f"), "file");
    const added = store(["add", src]);
    expect(added.stderr).toBe("");
    const path = added.stdout.toString().trim();
    expect(path).toMatch(new RegExp(`^${env.NIXSTATE_STATE_DIR}/store/[0-9a-z]{32}-src$`));

    const info = store(["path-info", "--json", "--closure-size", path]);
    const [json] = JSON.parse(info.stdout.toString());
    expect(Object.keys(json)).toEqual([
      "path",
      "narHash",
      "narSize",
      "references",
      "ca",
      "closureSize",
      "registrationTime",
    ]);
    expect(json.narHash).toMatch(/^sha256-/);
    expect(json.ca).toMatch(/^fixed:r:sha256:/);

    const q = store(["query", "--references", "--", path]);
    expect(q.status).toBe(0);
    expect(q.stdout.toString()).toBe("");
    expect(store(["query", "--deriver", path]).stdout.toString()).toBe("unknown-deriver\n");

    const exported = store(["export", path]).stdout;
    const dry = store(["gc", "--dry-run"]);
    expect(dry.stdout.toString()).toBe(`${path}\n`);
    expect(dry.stderr).toMatch(/1 store paths would be deleted/);
    const gc = store(["gc"]);
    expect(gc.stdout.toString()).toBe(`${path}\n`);
    expect(gc.stderr).toMatch(/1 store paths deleted/);
    expect(store(["import"], exported).stdout.toString()).toBe(`${path}\n`);
    expect(store(["verify"]).status).toBe(0);

    chmodSync(join(path, "f"), 0o644);
    writeFileSync(join(path, "f"), "changed");
    const bad = store(["verify"]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/was modified/);
    expect(bad.stderr).toMatch(/error: store verification found 1 problem/);
  });

  it("reports bad input as `error: …` with exit code 1", () => {
    const unknown = `${env.NIXSTATE_STATE_DIR}/store/00000000000000000000000000000000-x`;
    const r = store(["path-info", unknown]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `error: path '${unknown}' is not valid in this store (add or import it first)\n`,
    );
    const m = store(["query", "--referrers", "/tmp/not-a-store-path"]);
    expect(m.status).toBe(1);
    expect(m.stderr).toMatch(/^error: path '\/tmp\/not-a-store-path' is not in the Nix store/);
  });

  it("imports a .drv with its input source from a Nix-style store without a database", () => {
    const nixStore = join(dir, "nix", "store");
    mkdirSync(nixStore, { recursive: true });
    const storeDir = new StoreDir(nixStore);
    const srcText = "source text";
    const src = storeDir.print(makeTextPath(storeDir, "src.txt", Hash.of("sha256", srcText)));
    writeFileSync(src, srcText);
    const drv: Derivation = {
      name: "thing",
      outputs: new Map([["out", { type: "deferred" }]]),
      inputSrcs: [src],
      inputDrvs: new Map(),
      platform: "x86_64-linux",
      builder: "/bin/sh",
      args: ["-c", `cat ${src} > $out`],
      env: new Map([["name", "thing"]]),
    };
    const filled = fillInOutputPaths(drv, storeDir, () => {
      throw new Error("no inputs");
    });
    const bytes = printDerivation(filled);
    const drvPath = derivationPath(filled, bytes, storeDir);
    writeFileSync(drvPath, bytes);
    const opts = ["--store-dir", nixStore, "--store-root", join(dir, "root")];
    const r = runCli(["store", "add-drv", ...opts, drvPath]);
    expect(r.stderr).toBe("");
    expect(r.stdout.toString()).toBe(`${drvPath}\n`);
    const closure = runCli(["store", "query", "-R", ...opts, drvPath]);
    expect(closure.stdout.toString()).toBe(`${src}\n${drvPath}\n`);
    const outputs = runCli(["store", "query", "--outputs", ...opts, drvPath]);
    expect(outputs.stdout.toString()).toMatch(/-thing\n$/);
    // The same questions with --json: what the lines said, as JSON.
    const q = (args: string[]) =>
      JSON.parse(runCli(["store", "query", "--json", ...opts, ...args]).stdout.toString());
    expect(q(["-R", drvPath])).toEqual([src, drvPath]);
    expect(q(["--outputs", drvPath])).toEqual({
      [drvPath]: { out: outputs.stdout.toString().trim() },
    });
    expect(q(["--deriver", src])).toEqual({ [src]: null });
    expect(q(["--referrers", src])).toEqual([drvPath]);
  });

  it("answers with --json: roots, verify, gc, delete, failed list", () => {
    const env2 = { NIXSTATE_STATE_DIR: join(dir, "state-json") };
    const st = (args: string[]) => runCli(["store", ...args], { env: env2 });
    const js = (r: { stdout: Buffer }) => JSON.parse(r.stdout.toString());
    const src = join(dir, "src-json");
    mkdirSync(src);
    writeFileSync(join(src, "f"), "file");
    const [a, b] = ["one", "two"].map((n) => {
      writeFileSync(join(src, "f"), n);
      return st(["add", src]).stdout.toString().trim();
    }) as [string, string];
    st(["add-root", "keep", a]);
    const roots = js(st(["roots", "--json"]));
    expect(roots).toEqual([{ link: join(env2.NIXSTATE_STATE_DIR, "gcroots", "keep"), path: a }]);
    expect(js(st(["verify", "--json"]))).toEqual({ checked: 2, problems: [] });
    const dry = js(st(["gc", "--dry-run", "--json"]));
    expect(dry).toEqual({ deleted: [b], bytesFreed: expect.any(Number), dryRun: true });
    expect(dry.bytesFreed).toBeGreaterThan(0);
    chmodSync(join(a, "f"), 0o644);
    writeFileSync(join(a, "f"), "changed");
    const bad = st(["verify", "--json"]);
    expect(bad.status).toBe(1);
    const report = js(bad);
    expect(report.checked).toBe(2);
    expect(report.problems).toEqual([{ path: a, message: expect.stringMatching(/was modified/) }]);
    const deleted = js(st(["delete", "--json", b]));
    expect(deleted).toEqual({ deleted: [b], bytesFreed: expect.any(Number) });
    expect(deleted.bytesFreed).toBeGreaterThan(0);
    const failed = runCli(["failed", "list", "--json"], { env: env2 });
    expect(js(failed)).toEqual([]);
  });
});
