import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Hash } from "../../src/hash/hash.ts";
import { haveVectors, vectorPath } from "../vectors.ts";
import { runCli } from "./run-cli.ts";

const dir = mkdtempSync(join(tmpdir(), "nixstate-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("nixstate hash", () => {
  it("converts between renderings", () => {
    const h = Hash.of("sha256", "asdf");
    const r = runCli(["hash", "convert", "--to", "nix32", h.toSri(), h.format("base16")]);
    expect(r.status).toBe(0);
    expect(r.stdout.toString()).toBe(`${h.toNix32()}\n${h.toNix32()}\n`);
    const b = runCli(["hash", "convert", "--to", "sri", "--type", "sha256", h.toBase16()]);
    expect(b.stdout.toString()).toBe(`${h.toSri()}\n`);
  });

  it("fails with exit code 1 and a message on bad input", () => {
    const r = runCli(["hash", "convert", "--to", "nix32", "sha256:xyz"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: hash 'sha256:xyz' has wrong length/);
    expect(runCli(["hash", "convert", "--to", "hex", "sha256:xyz"]).stderr).toMatch(
      /unknown hash format/,
    );
  });

  it("hashes a file flat and as a NAR", () => {
    const f = join(dir, "hi");
    writeFileSync(f, "hi");
    const flat = runCli(["hash", "path", "--flat", "--type", "sha256", f]);
    expect(flat.stdout.toString()).toBe(`${Hash.of("sha256", "hi").toBase16()}\n`);
    const sri = runCli(["hash", "path", "--type", "sha256", "--sri", f]);
    expect(sri.stdout.toString()).toMatch(/^sha256-[A-Za-z0-9+/]{43}=\n$/);
  });
});

describe("nixstate nar", () => {
  it("dumps, lists and restores a tree", () => {
    const src = join(dir, "tree");
    mkdirSync(join(src, "sub"), { recursive: true });
    writeFileSync(join(src, "sub", "file"), "contents\n");
    writeFileSync(join(src, "exe"), "#!/bin/sh\n", { mode: 0o755 });
    symlinkSync("sub/file", join(src, "link"));
    const dump = runCli(["nar", "dump", src]);
    expect(dump.status).toBe(0);
    const ls = runCli(["nar", "ls"], { input: dump.stdout });
    const listing = JSON.parse(ls.stdout.toString());
    expect(listing.root.entries.exe).toMatchObject({ type: "regular", executable: true });
    expect(listing.root.entries.link).toMatchObject({ type: "symlink", target: "sub/file" });
    const out = join(dir, "restored");
    expect(runCli(["nar", "restore", out], { input: dump.stdout }).status).toBe(0);
    expect(readFileSync(join(out, "sub", "file"), "utf8")).toBe("contents\n");
    expect(runCli(["nar", "dump", out]).stdout.equals(dump.stdout)).toBe(true);
  });

  it("refuses a hostile NAR with exit code 1 and writes nothing", () => {
    const bad = Buffer.concat([
      ...["nix-archive-1", "(", "type", "directory", "entry", "(", "name", "..", "node"].map(
        (s) => {
          const b = Buffer.from(s);
          const len = Buffer.alloc(8);
          len.writeBigUInt64LE(BigInt(b.length));
          return Buffer.concat([len, b, Buffer.alloc((8 - (b.length % 8)) % 8)]);
        },
      ),
    ]);
    const out = join(dir, "hostile");
    const r = runCli(["nar", "restore", out], { input: bad });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: .*\.\./);
    expect(() => readFileSync(out)).toThrow();
  });
});

describe("nixstate derivation show", () => {
  it("reports a missing file clearly", () => {
    const r = runCli(["derivation", "show", join(dir, "nope.drv")]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("no such file or directory");
  });

  it.runIf(haveVectors)("prints Nix 2.8's bytes for a recorded derivation", () => {
    const f = vectorPath("derivation/nix-2.8/s8myl3rpa0kxixcpzj83fknkv345c0fl-main.drv");
    const r = runCli(["derivation", "show", f]);
    expect(r.status).toBe(0);
    expect(r.stdout.toString()).toBe(readFileSync(`${f}.show-derivation.json`, "utf8"));
  });

  it("refuses a malformed file with the byte offset", () => {
    const f = join(dir, "bad.drv");
    writeFileSync(f, 'Derive([],[],[],"x86_64-linux","/bin/sh",[],[("a"');
    const r = runCli(["derivation", "show", f]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/invalid derivation at byte 49: expected ','/);
  });
});
