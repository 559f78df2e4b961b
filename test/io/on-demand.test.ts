// Packages loaded at first use: from sources the package itself, in the bundle execa's own
// one-file copy (dist/vendor/execa.mjs), which must start processes as the package does.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { execa } from "../../src/io/on-demand.ts";

const dist = resolve(import.meta.dirname, "../../dist");
// `npm ci` builds dist/ (the prepare script), so the bundle is there to test.
if (!existsSync(join(dist, ".stamp"))) throw new Error("dist/ is not built: run `npm run build`");

describe("on-demand packages", () => {
  it("run a process through execa from the sources", async () => {
    const r = await execa("sh", ["-c", "echo from-sources; exit 3"], { reject: false });
    expect([r.stdout, r.exitCode]).toEqual(["from-sources", 3]);
  });

  it("run a process through the bundle's own execa", () => {
    const script = `const { execa } = require(${JSON.stringify(join(dist, "vendor/execa.mjs"))});
      execa("sh", ["-c", "echo from-bundle >&2; exit 4"], { reject: false }).then((r) =>
        console.log(JSON.stringify([r.stderr, r.exitCode])));`;
    expect(
      JSON.parse(execFileSync(process.execPath, ["-e", script], { encoding: "utf8" })),
    ).toEqual(["from-bundle", 4]);
    // The bundle loads that copy, not the package's ~150 modules.
    expect(readFileSync(join(dist, "nixstate.cjs"), "utf8")).toContain('"vendor/execa.mjs"');
  });
});
