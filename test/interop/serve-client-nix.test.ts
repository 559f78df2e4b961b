// Our serve client against real Nix 2.8's `nix-store --serve --write` on a private store:
// queries, copying a closure in (AddToStoreNar, and ImportPaths as a 2.4 client), building a
// BasicDerivation (also as a 2.5 client, where Nix 2.8 sends builtOutputs anyway) and copying
// its output back into a nixstate store with the same NAR hash; and once through the ssh
// stand-in, started the way Nix starts `ssh://` stores.

import { appendFileSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { nixSystem } from "../../src/builder/build-settings.ts";
import { Hash } from "../../src/hash/hash.ts";
import { NIX_2_8_DEFAULT_BUILD_OPTIONS } from "../../src/protocol/serve/build-options.ts";
import { copyClosureFromServe, copyClosureToServe } from "../../src/remote/serve-copy.ts";
import {
  nixStoreServeCommand,
  type ServeProcess,
  startServe,
  startSshServe,
} from "../../src/remote/serve-transport.ts";
import type { LocalStore } from "../../src/store/local-store.ts";
import { SSH_STAND_IN } from "../fixtures/ssh-stand-in.ts";
import { basicDrv } from "../remote/serve-fixtures.ts";
import { useTempStores } from "../store/temp-store.ts";
import { haveRealNix, makeNixEnv, type NixEnv } from "./real-nix.ts";

describe.runIf(haveRealNix())("serve client against Nix 2.8's nix-store --serve --write", () => {
  const nix: NixEnv = makeNixEnv();
  const stores = useTempStores();
  afterAll(() => nix.cleanup());
  /** A nixstate store whose paths are named like Nix's private store. */
  const local = (): LocalStore =>
    stores.open({ storeDir: nix.storeDir, storeRoot: stores.freshDir("root") });
  const serve = (clientVersion?: number): Promise<ServeProcess> =>
    startServe(nixStoreServeCommand(), {
      storeDir: local().storeDir,
      env: nix.env,
      ...(clientVersion ? { clientVersion } : {}),
    });
  const nixHash = (path: string) =>
    Hash.parse(nix.run("nix-store", ["-q", "--hash", path]).trim(), "sha256");

  it("queries, and imports a closure (AddToStoreNar at 2.7, ImportPaths at 2.4)", async () => {
    const store = local();
    const s = await serve();
    expect(s.client.serverVersion).toBe(0x207);
    const a = store.addTextToStore("a", "from nixstate");
    const b = store.addTextToStore("b", `refers to ${a.path}`, [a.path]);
    expect(await copyClosureToServe(store, s.client, [b.path])).toEqual([a.path, b.path]);
    expect(await s.client.queryValidPaths([a.path, b.path])).toEqual([a.path, b.path].sort());
    expect(nix.run("nix-store", ["-q", "--references", b.path]).trim()).toBe(a.path);
    expect(nixHash(b.path).equals(b.narHash)).toBe(true);
    const [info] = await s.client.queryPathInfos([b.path]);
    expect(info).toMatchObject({ path: b.path, references: [a.path], narSize: b.narSize });
    expect(info!.narHash!.equals(b.narHash)).toBe(true);
    expect(await s.client.queryClosure([b.path])).toEqual([a.path, b.path].sort());
    await s.close();

    const old = await serve(0x204);
    const c = store.addTextToStore("c", `and ${b.path}`, [b.path]);
    expect(await copyClosureToServe(store, old.client, [c.path])).toEqual([c.path]);
    expect(nixHash(c.path).equals(c.narHash)).toBe(true);
    expect((await old.close()).code).toBe(0);
  });

  for (const version of [0x207, 0x205]) {
    it(`builds a BasicDerivation at 0x${version.toString(16)} and copies its output back with the same NAR hash`, async () => {
      const store = local();
      const src = store.addTextToStore("src", `source ${version}`);
      const d = basicDrv(
        store.storeDir,
        `nix-${version.toString(16)}`,
        'read -r l < $src; /bin/mkdir $out; printf "%s\\n" "$l" > $out/file; /bin/ln -s file $out/link',
        { system: nixSystem(), inputSrcs: [src.path], env: { src: src.path } },
      );
      const s = await serve(version);
      await copyClosureToServe(store, s.client, [src.path]);
      const r = await s.client.buildDerivation(d.drvPath, d.drv, NIX_2_8_DEFAULT_BUILD_OPTIONS);
      expect(r.errorMsg).toBe("");
      expect(r.status).toBe("Built");
      // Nix 2.8 sends builtOutputs whatever the client's version (NixOS/nix#6946).
      expect(r.builtOutputs.out?.outPath).toBe(d.out);
      expect(await copyClosureFromServe(s.client, store, [d.out])).toEqual([d.out]);
      expect(store.queryPathInfo(d.out).narHash.equals(nixHash(d.out))).toBe(true);
      expect(readFileSync(join(store.toRealPath(d.out), "file"), "utf8")).toBe(
        `source ${version}\n`,
      );
      const failing = basicDrv(store.storeDir, "fails", "exit 3", { system: nixSystem() });
      const f = await s.client.buildDerivation(
        failing.drvPath,
        failing.drv,
        NIX_2_8_DEFAULT_BUILD_OPTIONS,
      );
      expect(f.status).toBe("PermanentFailure");
      expect(Object.keys(f.builtOutputs)).toHaveLength(0);
      expect(await s.client.queryValidPaths([d.out])).toEqual([d.out]);
      await s.close();
    });
  }

  it("reaches nix-store through the ssh stand-in as Nix does (ssh HOST -x -a …)", async () => {
    const shimDir = mkdtempSync(join(tmpdir(), "nixstate-ssh-"));
    try {
      copyFileSync(SSH_STAND_IN, join(shimDir, "ssh"));
      const log = join(shimDir, "log");
      appendFileSync(log, "");
      const env = {
        ...nix.env,
        PATH: `${shimDir}:${process.env.PATH}`,
        SSH_STAND_IN_LOG: log,
        NIX_SSHOPTS: "-oBatchMode=yes",
      };
      const store = local();
      const s = await startSshServe("ssh://builder@buildbox", { storeDir: store.storeDir, env });
      const p = store.addTextToStore("over-ssh", "hello");
      expect(await copyClosureToServe(store, s.client, [p.path])).toEqual([p.path]);
      expect(await s.client.queryValidPaths([p.path])).toEqual([p.path]);
      expect((await s.close()).code).toBe(0);
      expect(readFileSync(log, "utf8")).toBe(
        "builder@buildbox -x -a -oBatchMode=yes nix-store --serve --write\n",
      );
    } finally {
      rmSync(shimDir, { recursive: true, force: true });
    }
  });
});
