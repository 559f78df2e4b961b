// The README's "Derivations in TypeScript" example, run as written: `nixstate build -f` builds it,
// and its Nix twin (from the same section) instantiated by real Nix gives the same .drv paths.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../cli/run-cli.ts";
import { repoRoot } from "../vectors.ts";
import { haveRealNix, makeNixEnv, type NixEnv } from "./real-nix.ts";

/** The first ```LANG block of the README's section titled `heading`. */
function readmeBlock(heading: string, lang: string): string {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const start = readme.indexOf(`### ${heading}\n`);
  expect(start).toBeGreaterThanOrEqual(0);
  const section = readme.slice(start, readme.indexOf("\n#", start + 4));
  const m = new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\`\\n`).exec(section);
  expect(m, `a \`\`\`${lang} block under '${heading}'`).not.toBeNull();
  return m![1]!;
}

let nix: NixEnv | undefined;
afterAll(() => nix?.cleanup());

describe.runIf(haveRealNix())("README: derivations in TypeScript", () => {
  it("builds with nixstate build -f and gives Nix's .drv paths", () => {
    nix = makeNixEnv();
    const dir = join(nix.root, "project");
    mkdirSync(join(dir, "node_modules"), { recursive: true });
    writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
    symlinkSync(repoRoot, join(dir, "node_modules", "nixstate"));
    writeFileSync(join(dir, "hello.ts"), readmeBlock("Derivations in TypeScript", "ts"));
    const nixFile = nix.writeExpr("hello.nix", readmeBlock("Derivations in TypeScript", "nix"));

    const nixDrv = (attr: string) =>
      nix!.run("nix-instantiate", ["--no-gc-warning", nixFile, "-A", attr]).trim();
    const shoutDrv = nixDrv("shout");
    const greetingDrv = nixDrv("greeting");
    const nixOut = (drv: string, output: string) =>
      JSON.parse(nix!.run("nix", ["show-derivation", drv]))[drv].outputs[output].path as string;

    // Nix's store directory and files (no --store-root: builders must see their real paths).
    const store = ["--store-dir", nix.storeDir, "--state-dir", join(nix.root, "nixstate")];
    const built = runCli(["build", ...store, "-f", "hello.ts"], { cwd: dir });
    expect(built.stderr).toContain(`  ${shoutDrv}\n`);
    expect(built.stderr).toContain(`  ${greetingDrv}\n`);
    expect(built.status, built.stderr).toBe(0);
    const out = built.stdout.toString().trim();
    expect(out).toBe(nixOut(shoutDrv, "out"));
    expect(readFileSync(out, "utf8")).toBe("HELLO, WORLD!\nsays hello\n");

    const doc = runCli(["build", ...store, "-f", "hello.ts", "-A", "greeting.doc"], { cwd: dir });
    expect(doc.status).toBe(0);
    expect(doc.stdout.toString()).toBe(`${nixOut(greetingDrv, "doc")}\n`);

    // Nix builds its own .drv to the same output.
    const nixBuilt = nix.run("nix-store", ["--realise", shoutDrv]).trim();
    expect(nixBuilt).toBe(out);
    expect(readFileSync(nixBuilt, "utf8")).toBe("HELLO, WORLD!\nsays hello\n");
  });
});
