// The seed's exchange against `nixstate serve --write` as a subprocess: a client that speaks one
// version sends BuildDerivation with a BasicDerivation (no .drv anywhere) and must get exactly
// that version's BuildResult layout, read here field by field (not with our own decoder), and
// nothing more: a second request right after is answered in step, and stdout ends with it.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ByteReader } from "../../src/io/byte-reader.ts";
import { NIX_2_8_DEFAULT_BUILD_OPTIONS } from "../../src/protocol/serve/build-options.ts";
import { readServerHello, writeClientHello } from "../../src/protocol/serve/handshake.ts";
import { writeServeRequest } from "../../src/protocol/serve/serve-request.ts";
import { WireDecoder } from "../../src/protocol/wire/wire-decoder.ts";
import { WireEncoder } from "../../src/protocol/wire/wire-encoder.ts";
import { nixstateServeCommand } from "../../src/remote/serve-transport.ts";
import { StoreDir } from "../../src/store-path/store-path.ts";
import { useTempStores } from "../store/temp-store.ts";
import { basicDrv } from "./serve-fixtures.ts";

const stores = useTempStores();
const SYSTEM = "x86_64-linux";

/** The status numbers of Nix's BuildResult. */
const BUILT = 0;
const PERMANENT_FAILURE = 3;

describe("the seed's BuildDerivation exchange, at every version", () => {
  for (let minor = 0; minor <= 8; minor++) {
    const version = 0x200 | minor;
    it(`0x${version.toString(16)}: builds through the goal machines, replies in exactly that version's layout`, async () => {
      const state = stores.freshDir("seed");
      const storeDir = new StoreDir(`${state}/store`);
      const ok = basicDrv(storeDir, `seed${minor}`, "echo building; echo hello > $out", {
        system: SYSTEM,
      });
      const fails = basicDrv(storeDir, `seedfail${minor}`, "echo partial > $out; exit 3", {
        system: SYSTEM,
      });
      const [program, ...args] = nixstateServeCommand({ stateDir: state });
      const child = spawn(program!, args, {
        stdio: ["pipe", "pipe", "pipe"],
      });
      const stderr: Buffer[] = [];
      child.stderr.on("data", (c: Buffer) => stderr.push(c));
      const exited = new Promise<number | null>((r) => child.once("close", r));
      const d = new WireDecoder(new ByteReader(child.stdout), storeDir);
      const e = new WireEncoder(storeDir);
      writeClientHello(e, version);
      child.stdin.write(e.take());
      expect(await readServerHello(d)).toBe(0x208);

      const send = (b: typeof ok) => {
        writeServeRequest(
          e,
          {
            command: "BuildDerivation",
            drvPath: b.drvPath,
            drv: b.drv,
            options: NIX_2_8_DEFAULT_BUILD_OPTIONS,
          },
          // 0x200 predates BuildDerivation, but Nix 2.8 answers it at any version (so do we);
          // the request is laid out as at 0x201 (the same build options).
          Math.max(version, 0x201),
        );
        child.stdin.write(e.take());
      };
      /** Reads one BuildResult by hand; returns its status and message. */
      const readReply = async (expectBuilt: string | undefined) => {
        const status = await d.uint("status");
        const errorMsg = await d.string("errorMsg");
        if (minor >= 3) {
          expect(await d.uint("timesBuilt")).toBe(1);
          expect(await d.uint("isNonDeterministic")).toBe(0);
          const start = await d.uint("startTime");
          const stop = await d.uint("stopTime");
          expect(start).toBeGreaterThan(1_600_000_000);
          expect(stop).toBeGreaterThanOrEqual(start);
        }
        if (minor >= 6) {
          const n = await d.uint("builtOutputs count");
          expect(n).toBe(expectBuilt ? 1 : 0);
          if (expectBuilt && minor >= 8) {
            expect(await d.string("output name")).toBe("out");
            expect(await d.string("outPath")).toBe(expectBuilt);
            expect(await d.uint("signatures")).toBe(0);
          } else if (expectBuilt) {
            expect(await d.string("DrvOutput id")).toMatch(/^sha256:[0-9a-f]{64}!out$/);
            const realisation = JSON.parse(await d.string("realisation"));
            expect(`${storeDir.path}/${realisation.outPath}`).toBe(expectBuilt);
          }
        }
        return { status, errorMsg };
      };

      send(ok);
      const built = await readReply(ok.out);
      expect(built).toEqual({ status: BUILT, errorMsg: "" });
      send(fails);
      const failed = await readReply(undefined);
      expect(failed.status).toBe(PERMANENT_FAILURE);
      // Nix 2.8's bytes: formatted beforehand (ANSI normal first), the path in magenta bold.
      expect(failed.errorMsg).toBe(
        `\x1b[0mbuilder for '\x1b[35;1m${fails.drvPath}\x1b[0m' failed with exit code 3`,
      );
      child.stdin.end();
      expect(await d.atEnd()).toBe(true);
      expect(await exited).toBe(0);

      const log = Buffer.concat(stderr).toString();
      expect(log).toContain("building");
      const store = stores.open({ stateDir: state });
      expect(store.isValidPath(ok.out)).toBe(true);
      expect(store.queryPathInfo(ok.out).deriver).toBe(ok.drvPath);
      expect(store.isValidPath(ok.drvPath)).toBe(false);
      expect(existsSync(store.toRealPath(ok.drvPath))).toBe(false);
      // The failed build leaves nothing: no valid path, no file, no lock.
      expect(store.isValidPath(fails.out)).toBe(false);
      expect(existsSync(store.toRealPath(fails.out))).toBe(false);
      expect(existsSync(`${store.toRealPath(fails.out)}.lock`)).toBe(false);
    });
  }
});
