// Requests of the serve protocol (serve-protocol.md §6): a u64 command code, then its
// arguments. ImportPaths is followed by an export stream and AddToStoreNar by narSize bytes of
// NAR; both are left in the stream for the caller to consume (export-stream.ts, wire-nar.ts).

import type { BasicDerivation } from "../../derivation/derivation.ts";
import { derivationNameFromFile } from "../../derivation/drv-file.ts";
import type { ValidPathInfo } from "../../store/path-info.ts";
import type { WireDecoder } from "../wire/wire-decoder.ts";
import type { WireEncoder } from "../wire/wire-encoder.ts";
import { WireValueError } from "../wire/wire-value-error.ts";
import { type BuildOptions, readBuildOptions, writeBuildOptions } from "./build-options.ts";
import {
  type PathWithOutputs,
  PathWithOutputsError,
  parsePathWithOutputs,
  renderPathWithOutputs,
} from "./path-with-outputs.ts";
import { readBasicDerivation, writeBasicDerivation } from "./serve-basic-derivation.ts";
import {
  SERVE_COMMAND_MINOR,
  ServeCommand,
  type ServeCommandName,
  serveCommandName,
} from "./serve-command.ts";
import { formatServeVersion, hasServeMinor } from "./serve-version.ts";

export type ServeRequest =
  /** Which of `paths` are valid; `lock` adds temp roots, `substitute` substitutes missing ones. */
  | { command: "QueryValidPaths"; lock: boolean; substitute: boolean; paths: string[] }
  | { command: "QueryPathInfos"; paths: string[] }
  /** The reply is the path's NAR. */
  | { command: "DumpStorePath"; path: string }
  /** An export stream follows the command code. */
  | { command: "ImportPaths" }
  /** `sign` is obsolete (ignored since Nix 2.0); the reply is an export stream. */
  | { command: "ExportPaths"; sign: boolean; paths: string[] }
  | { command: "BuildPaths"; paths: PathWithOutputs[]; options: BuildOptions }
  | { command: "QueryClosure"; includeOutputs: boolean; paths: string[] }
  | { command: "BuildDerivation"; drvPath: string; drv: BasicDerivation; options: BuildOptions }
  /**
   * `info.narSize` bytes of NAR follow. registrationTime 0 means "the time of import"; the
   * NAR hash travels as bare base16 (what Nix 2.8's client sends).
   */
  | { command: "AddToStoreNar"; info: ValidPathInfo };

/**
 * Read the next request, or undefined when the input ends where a command code would start
 * (the client closed the session).
 */
export async function readServeRequest(
  d: WireDecoder,
  version: number,
): Promise<ServeRequest | undefined> {
  if (await d.atEnd()) return undefined;
  const at = d.offset;
  const code = await d.uint("command code");
  const command = serveCommandName(code);
  if (command === undefined) {
    throw d.fail("unknown-command", "a serve command (1–9)", at, `unknown serve command ${code}`);
  }
  // A command newer than the session is still read, as Nix's server does (it never checks):
  // a 0x200 client's BuildDerivation is answered in the 0x200 layout. Only writers refuse.
  switch (command) {
    case "QueryValidPaths":
      return {
        command,
        lock: await d.bool("lock"),
        substitute: await d.bool("substitute"),
        paths: await d.storePathSet("paths"),
      };
    case "QueryPathInfos":
      return { command, paths: await d.storePathSet("paths") };
    case "DumpStorePath":
      return { command, path: await d.storePath("path") };
    case "ImportPaths":
      return { command };
    case "ExportPaths":
      return {
        command,
        sign: await d.bool("sign (obsolete)"),
        paths: await d.storePathSet("paths"),
      };
    case "BuildPaths": {
      const paths = await d.list("paths", () => readPathWithOutputs(d));
      return { command, paths, options: await readBuildOptions(d, version) };
    }
    case "QueryClosure":
      return {
        command,
        includeOutputs: await d.bool("includeOutputs"),
        paths: await d.storePathSet("paths"),
      };
    case "BuildDerivation": {
      const drvAt = d.offset;
      const drvPath = await d.storePath("drvPath");
      if (!drvPath.endsWith(".drv")) {
        throw d.fail("invalid", "drvPath (a .drv store path)", drvAt, `'${drvPath}' is not a .drv`);
      }
      const drv = await readBasicDerivation(d, drvPath);
      return { command, drvPath, drv, options: await readBuildOptions(d, version) };
    }
    case "AddToStoreNar":
      return { command, info: await readAddToStoreNarInfo(d) };
  }
}

async function readPathWithOutputs(d: WireDecoder): Promise<PathWithOutputs> {
  const at = d.offset;
  const expected = "a path to build ('PATH' or 'PATH!OUT1,OUT2')";
  const text = await d.token(expected);
  let parsed: PathWithOutputs;
  try {
    parsed = parsePathWithOutputs(text);
  } catch (error) {
    if (!(error instanceof PathWithOutputsError)) throw error;
    throw d.fail("invalid", expected, at, error.message);
  }
  d.checkStorePath(parsed.path, "path to build", at);
  return parsed;
}

async function readAddToStoreNarInfo(d: WireDecoder): Promise<ValidPathInfo> {
  const path = await d.storePath("path");
  const deriver = await d.optionalStorePath("deriver");
  const narHash = await d.hash("narHash", "sha256");
  const references = await d.storePathSet("references");
  const registrationTime = await d.u64("registrationTime");
  const sizeAt = d.offset;
  const narSize = await d.u64("narSize");
  if (narSize === 0) {
    throw d.fail("invalid", "narSize", sizeAt, "narInfo is too old and missing the narSize field");
  }
  const ultimate = await d.bool("ultimate");
  const sigs = await d.stringSet("sigs");
  const ca = await d.optionalContentAddress("ca");
  return { path, deriver, narHash, references, registrationTime, narSize, ultimate, sigs, ca };
}

/** Write a request (for ImportPaths and AddToStoreNar, the stream or NAR must follow). */
export function writeServeRequest(e: WireEncoder, request: ServeRequest, version: number): void {
  const command: ServeCommandName = request.command;
  if (!hasServeMinor(version, SERVE_COMMAND_MINOR[command])) {
    throw new WireValueError(
      `${command} needs serve protocol 2.${SERVE_COMMAND_MINOR[command]}; this session speaks ${formatServeVersion(version)}`,
    );
  }
  e.u64(ServeCommand[command]);
  switch (request.command) {
    case "QueryValidPaths":
      e.bool(request.lock).bool(request.substitute).storePathSet(request.paths);
      return;
    case "QueryPathInfos":
      e.storePathSet(request.paths);
      return;
    case "DumpStorePath":
      e.storePath(request.path);
      return;
    case "ImportPaths":
      return;
    case "ExportPaths":
      e.bool(request.sign).storePathSet(request.paths);
      return;
    case "BuildPaths":
      e.list(request.paths, (p) => {
        e.checkStorePath(p.path, "path to build");
        try {
          e.string(renderPathWithOutputs(p));
        } catch (error) {
          if (error instanceof PathWithOutputsError) throw new WireValueError(error.message);
          throw error;
        }
      });
      writeBuildOptions(e, request.options, version);
      return;
    case "QueryClosure":
      e.bool(request.includeOutputs).storePathSet(request.paths);
      return;
    case "BuildDerivation":
      if (!request.drvPath.endsWith(".drv")) {
        throw new WireValueError(`drvPath '${request.drvPath}' is not a .drv`);
      }
      // The peer takes the name from the drvPath: a different one would build another thing.
      if (derivationNameFromFile(request.drvPath) !== request.drv.name) {
        throw new WireValueError(
          `derivation '${request.drv.name}' cannot be sent as '${request.drvPath}': the peer takes its name from the path`,
        );
      }
      e.storePath(request.drvPath, "drvPath");
      writeBasicDerivation(e, request.drv);
      writeBuildOptions(e, request.options, version);
      return;
    case "AddToStoreNar": {
      const i = request.info;
      if (i.narSize === 0) throw new WireValueError("AddToStoreNar needs the NAR's size");
      if (i.narHash.algo !== "sha256") {
        throw new WireValueError(`AddToStoreNar sends a sha256 NAR hash, got ${i.narHash.algo}`);
      }
      e.storePath(i.path, "path").optionalStorePath(i.deriver, "deriver").hashBase16(i.narHash);
      e.storePathSet(i.references, "reference").u64(i.registrationTime).u64(i.narSize);
      e.bool(i.ultimate).stringSet(i.sigs).optionalContentAddress(i.ca);
      return;
    }
  }
}
