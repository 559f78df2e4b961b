// Building one derivation on a remote machine, as Nix 2.8's build hook does
// (src/build-remote/build-remote.cc): over a session with the machine's serve program, copy the
// input closure there, BuildDerivation with the derivation as a BasicDerivation, copy the
// outputs back. Sessions outlive a build (RemoteBuildEffects keeps them for the next).

import type { BasicDerivation } from "../derivation/derivation.ts";
import type { BuildAttempt, RunBuildInput } from "../machines/build-attempt.ts";
import type { BuildHooks } from "../machines/worker-effects.ts";
import { isSuccess } from "../protocol/build-result.ts";
import { stripAnsi } from "../protocol/nix-hint.ts";
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
}

/**
 * An open serve session with a machine, used for one build after another (Nix 2.8's hook opens
 * one per build; the protocol allows many commands a session, which saves the remote program's
 * start each time). Its stderr goes to `logTo`, the log of the build it is running.
 */
export interface MachineSession {
  readonly machine: Machine;
  readonly serve: ServeProcess;
  logTo: ((chunk: Buffer) => void) | undefined;
  /** Bytes of log the current build has written. */
  logBytes?: number;
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
 * Open a session with `machine` (ssh found on the PATH of `env`). Throws MachineUnreachableError
 * when it cannot be opened: nothing was sent, the build can go elsewhere.
 */
export async function openMachineSession(
  store: LocalStore,
  machine: Machine,
  env?: NodeJS.ProcessEnv,
): Promise<MachineSession> {
  let session: MachineSession | undefined;
  try {
    const serve = await startSshServe(uriWithKey(machine), {
      storeDir: store.storeDir,
      ...(env ? { env } : {}),
      onStderr: (chunk) => session?.logTo?.(chunk),
    });
    session = { machine, serve, logTo: undefined };
    return session;
  } catch (error) {
    throw new MachineUnreachableError(
      machineName(machine),
      stripAnsi(error instanceof Error ? error.message : String(error)),
    );
  }
}

/** End a session; a dead or hung one must not keep anyone waiting. */
export async function closeMachineSession(session: MachineSession): Promise<void> {
  const { serve } = session;
  const killer = setTimeout(() => serve.child.kill("SIGKILL"), 5000);
  await serve.close().catch(() => serve.child.kill("SIGKILL"));
  clearTimeout(killer);
}

/**
 * Build `input` over `session`: copy the missing input closure there, BuildDerivation, copy the
 * outputs back. The machine's or the connection's failures become a BuildAttempt (MiscFailure
 * naming the machine) with nothing registered locally, and the session is then not `reusable`.
 */
export async function buildRemotely(
  store: LocalStore,
  session: MachineSession,
  input: RunBuildInput,
  settings: RemoteBuildSettings,
  signal: AbortSignal,
  hooks?: BuildHooks,
): Promise<{ attempt: BuildAttempt; reusable: boolean }> {
  const { drvPath, drv } = input;
  const startTime = Math.floor(Date.now() / 1000);
  const stamp = () => ({ startTime, stopTime: Math.floor(Date.now() / 1000) });
  const where = machineName(session.machine);
  const { serve } = session;
  const onAbort = () => serve.child.kill("SIGTERM");
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    if (signal.aborted) throw signal.reason;
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
    hooks?.builderStarted?.({ where: "remote", machine: where });
    const result = await serve.client.buildDerivation(drvPath, basic, options);
    hooks?.builderExited({
      how: isSuccess(result.status) ? "succeeded" : result.status,
      startTime: result.startTime || startTime,
      stopTime: result.stopTime || stamp().stopTime,
      logBytes: session.logBytes ?? 0,
    });
    if (!isSuccess(result.status)) {
      const message = `build of '${drvPath}' on '${where}' failed: ${stripAnsi(result.errorMsg)}`;
      return {
        attempt: { kind: "remoteFailed", status: result.status, message, ...stamp() },
        reusable: true,
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
    return { attempt: { kind: "success", builtOutputs, ...stamp() }, reusable: true };
  } catch (error) {
    const why = signal.aborted
      ? "interrupted"
      : stripAnsi(error instanceof Error ? error.message : String(error));
    const message = `build of '${drvPath}' on '${where}' failed: ${why}`;
    return { attempt: { kind: "error", message, ...stamp() }, reusable: false };
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
