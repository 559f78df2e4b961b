// Build directories left by a run that was killed are taken back by the next run; directories
// kept on purpose (-K) and those of live processes stay.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BuildDirPool } from "../../src/builder/build-dir-pool.ts";
import { DEAD_OWNER } from "../store/temp-store.ts";

const root = mkdtempSync(join(tmpdir(), "nixstate-build-dirs-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("build directory pool", () => {
  it("removes a dead process's pooled directories at its first use, and only those", async () => {
    const builds = join(root, "builds");
    mkdirSync(builds);
    const dead = join(builds, `nix-build-${DEAD_OWNER.pid}-aB3xYz`);
    const deadFull = join(builds, `nix-build-${DEAD_OWNER.pid}-Qw9rT1`);
    const kept = join(builds, `nix-build-${DEAD_OWNER.pid}-k33pMe-broken`);
    const live = join(builds, `nix-build-${process.pid}-L1veOk`);
    for (const d of [dead, deadFull, kept, live]) mkdirSync(d);
    writeFileSync(join(deadFull, "half-written"), "x");
    const pool = new BuildDirPool(builds);
    const dir = pool.acquire();
    expect(basename(dir)).toMatch(new RegExp(`^nix-build-${process.pid}-[A-Za-z0-9]{6}$`));
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(deadFull)).toBe(false);
    expect(existsSync(kept)).toBe(true);
    expect(existsSync(live)).toBe(true);
    expect(readdirSync(builds).sort()).toEqual(
      [basename(dir), basename(kept), basename(live)].sort(),
    );
    await pool.release(dir);
    await pool.close();
  });
});
