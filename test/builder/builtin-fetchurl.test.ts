// builtin:fetchurl inside the engine: a plain or executable file, an unpacked NAR, and failures
// that read like a builder's (exit code 1, the reason in the log).
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runBuiltinBuilder } from "../../src/builder/builtin-fetchurl.ts";
import type { BasicDerivation } from "../../src/derivation/derivation.ts";
import { dumpNar } from "../../src/nar/nar-dump.ts";

const dir = mkdtempSync(join(tmpdir(), "nixstate-builtin-"));
const drv = (env: Record<string, string>, builder = "builtin:fetchurl"): BasicDerivation => ({
  name: "f",
  outputs: new Map(),
  inputSrcs: [],
  platform: "builtin",
  builder,
  args: [],
  env: new Map(Object.entries(env)),
});
let n = 0;
const run = (d: BasicDerivation) => {
  const out = join(dir, `out-${n}`);
  const log = join(dir, `log-${n++}`);
  return runBuiltinBuilder(d, out, log, new AbortController().signal).then((exit) => ({
    exit,
    out,
    log: readFileSync(log, "utf8"),
  }));
};

describe("builtin:fetchurl", () => {
  const file = join(dir, "data.txt");
  writeFileSync(file, "payload\n");

  it("fetches a file:// URL as a file, executable on request", async () => {
    const plain = await run(drv({ url: `file://${file}` }));
    expect(plain.exit).toEqual({ kind: "exited", code: 0, logSize: expect.any(Number) });
    expect(readFileSync(plain.out, "utf8")).toBe("payload\n");
    expect(statSync(plain.out).mode & 0o111).toBe(0);
    const exe = await run(drv({ url: `file://${file}`, executable: "1" }));
    expect(statSync(exe.out).mode & 0o111).not.toBe(0);
  });

  it("fetches an http:// URL through fetch, and fails on an HTTP error", async () => {
    const server = createServer((req, res) => {
      if (req.url === "/data") res.end("over http\n");
      else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    try {
      const ok = await run(drv({ url: `http://127.0.0.1:${port}/data` }));
      expect(ok.exit).toMatchObject({ kind: "exited", code: 0 });
      expect(readFileSync(ok.out, "utf8")).toBe("over http\n");
      const missing = await run(drv({ url: `http://127.0.0.1:${port}/nothing` }));
      expect(missing.exit).toMatchObject({ kind: "exited", code: 1 });
      expect(missing.log).toMatch(/HTTP error 404/);
    } finally {
      server.close();
    }
  });

  it("unpacks a NAR with unpack = 1", async () => {
    const tree = join(dir, "tree");
    mkdirSync(tree);
    writeFileSync(join(tree, "a"), "A");
    const parts: Buffer[] = [];
    for await (const c of dumpNar(tree)) parts.push(Buffer.from(c));
    const nar = join(dir, "tree.nar");
    writeFileSync(nar, Buffer.concat(parts));
    const r = await run(drv({ url: `file://${nar}`, unpack: "1" }));
    expect(r.exit).toMatchObject({ kind: "exited", code: 0 });
    expect(readFileSync(join(r.out, "a"), "utf8")).toBe("A");
  });

  it("fails like a builder, saying why", async () => {
    const cases: [BasicDerivation, RegExp][] = [
      [drv({}), /error: attribute 'url' missing/],
      [drv({ url: "gopher://x/y" }), /unsupported URL scheme/],
      [drv({ url: `file://${join(dir, "missing")}` }), /error: .*no such file/i],
      [
        drv({ url: `file://${file}.nar.xz`, unpack: "1" }),
        /cannot unpack '.*\.nar\.xz': xz-compressed NARs are not supported/,
      ],
      [
        drv({ url: `file://${file}` }, "builtin:buildenv"),
        /unsupported builtin builder 'buildenv'/,
      ],
    ];
    for (const [d, message] of cases) {
      const r = await run(d);
      expect(r.exit).toMatchObject({ kind: "exited", code: 1 });
      expect(r.log).toMatch(message);
    }
  });
});
