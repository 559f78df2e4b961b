// Builds received by `nixstate serve` use this machine's settings, as nix-store --serve's use its
// nix.conf: here the cores from NIXSTATE_CORES reach the builder as NIX_BUILD_CORES.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { nixSystem } from "../../src/builder/build-settings.ts";
import { NIX_2_8_DEFAULT_BUILD_OPTIONS } from "../../src/protocol/serve/build-options.ts";
import { copyClosureFromServe } from "../../src/remote/serve-copy.ts";
import { nixstateServeCommand, startServe } from "../../src/remote/serve-transport.ts";
import { basicDrv } from "../remote/serve-fixtures.ts";
import { useTempStores } from "../store/temp-store.ts";

const stores = useTempStores();

describe("serve and settings", () => {
  it("gives builders the cores the environment's setting names (NIXSTATE_CORES)", async () => {
    const serverState = stores.freshDir("server");
    const local = stores.open({
      storeDir: `${serverState}/store`,
      storeRoot: stores.freshDir("root"),
    });
    const s = await startServe(nixstateServeCommand({ stateDir: serverState }), {
      storeDir: local.storeDir,
      env: {
        ...process.env,
        NIXSTATE_CORES: "3",
        NIXSTATE_CONF: "",
        XDG_CONFIG_HOME: stores.freshDir("config"),
      },
    });
    const built = basicDrv(local.storeDir, "cores", 'printf %s "$NIX_BUILD_CORES" > $out', {
      system: nixSystem(),
    });
    const r = await s.client.buildDerivation(
      built.drvPath,
      built.drv,
      NIX_2_8_DEFAULT_BUILD_OPTIONS,
    );
    expect(r.errorMsg).toBe("");
    expect(r.status).toBe("Built");
    expect(await copyClosureFromServe(s.client, local, [built.out])).toEqual([built.out]);
    expect(readFileSync(local.toRealPath(built.out), "utf8")).toBe("3");
    await s.close();
  });
});
