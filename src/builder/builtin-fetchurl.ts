// Nix's `builtin:fetchurl` (src/libstore/builtins/fetchurl.cc in Nix 2.8), run inside the engine
// as Nix runs it, not as a process: fetch `url` (file:// read directly, http(s) through Node's
// fetch) into the output, as a file (`executable = "1"`: mode 0555) or, with `unpack = "1"`, as
// the NAR it holds. The output's fixed hash is checked afterwards like any fixed-output build's.
import { appendFileSync, chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { ByteReader } from "../io/byte-reader.ts";
import type { AnyDerivation } from "../machines/build-attempt.ts";
import { restoreNar } from "../nar/nar-restore.ts";
import type { BuilderExit } from "./run-builder.ts";

export const BUILTIN_FETCHURL = "builtin:fetchurl";

export function isBuiltinBuilder(drv: AnyDerivation): boolean {
  return drv.builder.startsWith("builtin:");
}

async function download(url: string, signal: AbortSignal): Promise<Buffer> {
  if (url.startsWith("file://")) return readFileSync(fileURLToPath(url));
  if (url.startsWith("http://") || url.startsWith("https://")) {
    const r = await fetch(url, { signal });
    if (!r.ok) throw new Error(`unable to download '${url}': HTTP error ${r.status}`);
    return Buffer.from(await r.arrayBuffer());
  }
  throw new Error(`unable to download '${url}': unsupported URL scheme`);
}

/**
 * Run builtin builder `drv.builder` to write output `out` (its physical path). Its messages go
 * to `logFile`, as a builder's output would; the result reads like a builder's exit.
 */
export async function runBuiltinBuilder(
  drv: AnyDerivation,
  out: string,
  logFile: string,
  signal: AbortSignal,
): Promise<BuilderExit> {
  mkdirSync(dirname(logFile), { recursive: true });
  writeFileSync(logFile, "");
  const say = (line: string) => appendFileSync(logFile, `${line}\n`);
  try {
    if (drv.builder !== BUILTIN_FETCHURL) {
      throw new Error(`unsupported builtin builder '${drv.builder.slice(8)}'`);
    }
    const url = drv.env.get("url") ?? drv.env.get("urls")?.split(/\s+/).find(Boolean);
    if (!url) throw new Error("attribute 'url' missing");
    const unpack = drv.env.get("unpack") === "1";
    // Nix 2.8 decompresses a `.xz` NAR first; Node has no xz, so say so rather than misread it.
    if (unpack && url.endsWith(".xz")) {
      throw new Error(
        `cannot unpack '${url}': xz-compressed NARs are not supported by nixstate's builtin:fetchurl; fetch the uncompressed NAR instead`,
      );
    }
    say(`downloading '${url}'...`);
    const data = await download(url, signal);
    if (unpack) {
      await restoreNar(ByteReader.from(data), out);
    } else {
      writeFileSync(out, data);
      chmodSync(out, drv.env.get("executable") === "1" ? 0o755 : 0o644);
    }
    return { kind: "exited", code: 0, logSize: readFileSync(logFile).length };
  } catch (e) {
    if (signal.aborted) return { kind: "aborted" };
    say(`error: ${e instanceof Error ? e.message : String(e)}`);
    return { kind: "exited", code: 1, logSize: readFileSync(logFile).length };
  }
}
