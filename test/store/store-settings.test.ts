// Where a store lives: flags over environment over defaults, and the chroot-store layout.
import { homedir } from "node:os";
import { describe, expect, it } from "vitest";
import { resolveStoreLayout } from "../../src/store/store-settings.ts";

describe("resolveStoreLayout", () => {
  it("defaults to $XDG_DATA_HOME/nixstate, else ~/.local/share/nixstate, with the store inside", () => {
    const xdg = resolveStoreLayout({}, { XDG_DATA_HOME: "/data" });
    expect(xdg.stateDir).toBe("/data/nixstate");
    expect(xdg.storeDir.path).toBe("/data/nixstate/store");
    expect(xdg.realStoreDir).toBe("/data/nixstate/store");
    expect(xdg.dbFile).toBe("/data/nixstate/db/db.sqlite");
    expect(xdg.gcRootsDir).toBe("/data/nixstate/gcroots");
    expect(xdg.logDir).toBe("/data/nixstate/log");
    expect(xdg.tmpDir).toBe("/data/nixstate/tmp");
    expect(resolveStoreLayout({}, {}).stateDir).toBe(`${homedir()}/.local/share/nixstate`);
  });

  it("takes flags over environment variables", () => {
    const env = { NIXSTATE_STATE_DIR: "/env/state", NIXSTATE_STORE_DIR: "/env/store" };
    expect(resolveStoreLayout({}, env).stateDir).toBe("/env/state");
    expect(resolveStoreLayout({}, env).storeDir.path).toBe("/env/store");
    const flags = resolveStoreLayout({ stateDir: "/flag/state", storeDir: "/nix/store" }, env);
    expect(flags.stateDir).toBe("/flag/state");
    expect(flags.storeDir.path).toBe("/nix/store");
    expect(resolveStoreLayout({ stateDir: "/s" }, {}).storeDir.path).toBe("/s/store");
  });

  it("keeps a chroot store's files under its root, named by the logical store directory", () => {
    const root = resolveStoreLayout({ storeRoot: "/chroot" }, {});
    expect(root.storeDir.path).toBe("/nix/store");
    expect(root.realStoreDir).toBe("/chroot/nix/store");
    expect(root.stateDir).toBe("/chroot/nix/var/nixstate");
    const custom = resolveStoreLayout(
      {},
      { NIXSTATE_STORE_ROOT: "/r", NIXSTATE_STORE_DIR: "/x/store" },
    );
    expect(custom.realStoreDir).toBe("/r/x/store");
  });

  it("makes relative directories absolute", () => {
    const rel = resolveStoreLayout({ stateDir: "rel/state", storeDir: "rel/store" }, {});
    expect(rel.stateDir).toBe(`${process.cwd()}/rel/state`);
    expect(rel.storeDir.path).toBe(`${process.cwd()}/rel/store`);
  });
});
