// Building one derivation on a remote machine, as Nix 2.8's build hook does
// (src/build-remote/build-remote.cc): start the machine's serve program, copy the input closure
// there, BuildDerivation with the derivation as a BasicDerivation, copy the outputs back.
import type { BuildAttempt, RunBuildInput } from "../build/build-attempt.ts";
import type { BuildHooks } from "../build/worker-effects.ts";
import type { BasicDerivation } from "../derivation/derivation.ts";
import { isSuccess } from "../protocol/build-result.ts";
import {
  type BuildOptions,
  NIX_2_8_DEFAULT_BUILD_OPTIONS,
} from "../protocol/serve/build-options.ts";
import type { LocalStore } from "../store/local-store.ts";
import type { Machine } from "./machines-file.ts";
import { copyClosureFromServe, copyClosureToServe } from "./serve-copy.ts";
import { type ServeProcess, startSshServe } from "./serve-transport.ts";

export interface RemoteBuildSettings {
  maxSilentTime: number;
  buildTimeout: number;
  maxLogSize: number;
  /** Environment of ssh (its PATH finds it); default this process's. */
  env?: NodeJS.ProcessEnv;
  /** Each chunk of the remote's stderr (its build log) as it arrives. */
  onStderr?: (chunk: Buffer) => void;
}

const ANSI_ESCAPE = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07/g;

/** Remote error messages are shown in our own error; their colours would leak into it. */
export function stripAnsi(s: string): string {
  return s.replace(ANSI_ESCAPE, "");
}

/** The machine as messages name it: its store URI without the query (remote-program…). */
export function machineName(m: Machine): string {
  const q = m.storeUri.indexOf("?");
  return q >= 0 ? m.storeUri.slice(0, q) : m.storeUri;
}

/**
 * The machine's ssh key and pinned host key go into the URI, where startSshServe reads them
 * (unless already set), as Nix 2.8's Machine::openStore does.
 */
function uriWithKey(m: Machine): string {
  let uri = m.storeUri;
  const add = (setting: string, value: string) => {
    if (value === "" || new RegExp(`[?&]${setting}=`).test(uri)) return;
    uri += `${uri.includes("?") ? "&" : "?"}${setting}=${encodeURIComponent(value)}`;
  };
  add("ssh-key", m.sshKey);
  add("base64-ssh-public-host-key", m.sshPublicHostKey);
  return uri;
}

/** The machine could not be reached (nothing was sent): the build can go elsewhere. */
export class MachineUnreachableError extends Error {
  override name = "MachineUnreachableError";
  constructor(
    readonly machine: string,
    why: string,
  ) {
    super(`cannot build on '${machine}': ${why}`);
  }
}

/**
 * Build `input` on `machine`. Throws MachineUnreachableError when the session cannot be opened;
 * any later failure of the machine or the connection becomes a BuildAttempt (MiscFailure naming
 * the machine), with nothing registered locally.
 */
export async function buildRemotely(
  store: LocalStore,
  machine: Machine,
  input: RunBuildInput,
  settings: RemoteBuildSettings,
  signal: AbortSignal,
  hooks?: BuildHooks,
): Promise<BuildAttempt> {
  const { drvPath, drv } = input;
  const startTime = Math.floor(Date.now() / 1000);
  const stamp = () => ({ startTime, stopTime: Math.floor(Date.now() / 1000) });
  const where = machineName(machine);
  let serve: ServeProcess | undefined;
  const onAbort = () => serve?.child.kill("SIGTERM");
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    if (signal.aborted) throw signal.reason;
    try {
      serve = await startSshServe(uriWithKey(machine), {
        storeDir: store.storeDir,
        ...(settings.env ? { env: settings.env } : {}),
        ...(settings.onStderr ? { onStderr: settings.onStderr } : {}),
      });
    } catch (error) {
      if (signal.aborted) throw error;
      throw new MachineUnreachableError(
        where,
        stripAnsi(error instanceof Error ? error.message : String(error)),
      );
    }
    if (signal.aborted) onAbort();
    await copyClosureToServe(store, serve.client, input.inputPaths);
    // As Nix 2.8's hook: inputDrvs go, the input closure becomes inputSrcs (all valid remotely).
    const basic: BasicDerivation = {
      name: drv.name,
      outputs: drv.outputs,
      inputSrcs: [...input.inputPaths].sort(),
      platform: drv.platform,
      builder: drv.builder,
      args: drv.args,
      env: drv.env,
    };
    const options: BuildOptions = {
      ...NIX_2_8_DEFAULT_BUILD_OPTIONS,
      maxSilentTime: settings.maxSilentTime,
      buildTimeout: settings.buildTimeout,
      maxLogSize: settings.maxLogSize,
    };
    const result = await serve.client.buildDerivation(drvPath, basic, options);
    hooks?.builderExited();
    if (!isSuccess(result.status)) {
      return {
        kind: "remoteFailed",
        status: result.status,
        message: `build of '${drvPath}' on '${where}' failed: ${stripAnsi(result.errorMsg)}`,
        ...stamp(),
      };
    }
    const missing = input.outputs.filter((o) => !store.isValidPath(o.path)).map((o) => o.path);
    // The worker holds the outputs' locks for this build: the import must not wait for them.
    const outputs = new Set(missing);
    await copyClosureFromServe(
      serve.client,
      store,
      missing,
      (info) => (outputs.has(info.path) ? { ...info, deriver: drvPath, ultimate: true } : info),
      outputs,
    );
    const builtOutputs = Object.fromEntries(
      input.outputs.filter((o) => o.wanted).map((o) => [o.name, { id: o.id, outPath: o.path }]),
    );
    return { kind: "success", builtOutputs, ...stamp() };
  } catch (error) {
    if (error instanceof MachineUnreachableError) throw error;
    const why = signal.aborted
      ? "interrupted"
      : stripAnsi(error instanceof Error ? error.message : String(error));
    return {
      kind: "error",
      message: `build of '${drvPath}' on '${where}' failed: ${why}`,
      ...stamp(),
    };
  } finally {
    signal.removeEventListener("abort", onAbort);
    if (serve) {
      const s = serve;
      // A dead or hung session must not keep the build waiting.
      const killer = setTimeout(() => s.child.kill("SIGKILL"), 5000);
      await s.close().catch(() => s.child.kill("SIGKILL"));
      clearTimeout(killer);
    }
  }
}
