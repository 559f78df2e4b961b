// Local build effects plus Nix's build hook: a derivation goes to a remote machine that fits it
// (build-remote.cc's choice), waits when every fitting machine is busy and it cannot be built
// here, and is built here when no machine fits. The remote's stderr is the derivation's log.
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { compressLog, logPaths } from "../builder/build-log.ts";
import type { LocalBuildSettings } from "../builder/build-settings.ts";
import { LocalBuildEffects, requiredFeatures } from "../builder/local-build-effects.ts";
import { LogLineSink } from "../builder/log-lines.ts";
import { lenientBoolAttr } from "../builder/structured-attrs.ts";
import type { BuildAttempt, RunBuildInput } from "../machines/build-attempt.ts";
import type { BuildHooks } from "../machines/worker-effects.ts";
import type { LocalStore } from "../store/local-store.ts";
import type { Substituter } from "../substituters/substituter.ts";
import { chooseMachine } from "./choose-machine.ts";
import type { Machine } from "./machines-file.ts";
import {
  buildRemotely,
  closeMachineSession,
  type MachineSession,
  MachineUnreachableError,
  openMachineSession,
} from "./remote-build.ts";

export interface BuildMachinesSettings {
  /** The build machines (`--builders`). */
  machines: Machine[];
  /** Builds at once on this machine (`--max-jobs`); remote builds do not count against it. */
  maxJobs: number;
}

function interrupted(input: RunBuildInput): BuildAttempt {
  const now = Math.floor(Date.now() / 1000);
  const message = `build of '${input.drvPath}' was interrupted`;
  return { kind: "error", message, startTime: now, stopTime: now };
}

export class RemoteBuildEffects extends LocalBuildEffects {
  readonly machines: readonly Machine[];
  private readonly maxLocalJobs: number;
  /** Builds running on each machine, what chooseMachine weighs. */
  private readonly loads: number[] = [];
  /** Machines that could not be reached: not tried again in this run (as Nix's hook). */
  private readonly down = new Set<number>();
  /** Open sessions per machine, between builds. */
  private readonly idle: MachineSession[][] = [];
  private closing = false;
  private localJobs = 0;
  /** Goals waiting for a machine or a local slot to free up. */
  private waiters: (() => void)[] = [];

  constructor(
    store: LocalStore,
    remote: BuildMachinesSettings,
    settings: Partial<LocalBuildSettings> = {},
    substituters: readonly Substituter[] = [],
  ) {
    super(store, { ...settings, localBuilds: remote.maxJobs > 0 }, substituters);
    this.machines = remote.machines;
    this.maxLocalJobs = remote.maxJobs;
  }

  /** Builds the machines take at once, on top of the local slots. */
  get remoteSlots(): number {
    return this.machines.reduce((n, m) => n + m.maxJobs, 0);
  }

  override async runBuild(
    input: RunBuildInput,
    signal: AbortSignal,
    hooks?: BuildHooks,
  ): Promise<BuildAttempt> {
    const { drv } = input;
    const local = this.canBuildLocally(drv);
    // As Nix: only normal builds go out, and preferLocalBuild stays here when it can.
    const remoteOk =
      input.mode === "normal" && !(lenientBoolAttr(drv, "preferLocalBuild", false) && local);
    for (;;) {
      const choice = remoteOk ? this.choose(input) : ({ kind: "unsuitable" } as const);
      if (choice.kind === "chosen") {
        try {
          return await this.buildOn(choice.index, input, signal, hooks);
        } catch (error) {
          if (!(error instanceof MachineUnreachableError)) throw error;
          if (signal.aborted) return interrupted(input);
          // As Nix: say so, leave the machine out from now on, and choose again.
          hooks?.note?.(`error: ${error.message}`);
          this.down.add(choice.index);
          continue;
        }
      }
      // No machine takes it and it cannot be built here: the local build explains why.
      if (!local && choice.kind === "unsuitable") return super.runBuild(input, signal, hooks);
      if (local && this.localJobs < this.maxLocalJobs) return this.buildHere(input, signal, hooks);
      // Postpone (Nix's "# postpone"): wait for a machine or a local slot.
      if (!(await this.waitForChange(signal))) return interrupted(input);
    }
  }

  /** chooseMachine over the machines still up; the index is into `this.machines`. */
  private choose(input: RunBuildInput) {
    const up = this.machines.map((_, i) => i).filter((i) => !this.down.has(i));
    const choice = chooseMachine(
      up.map((i) => this.machines[i]!),
      { system: input.drv.platform, requiredFeatures: requiredFeatures(input.drv) },
      up.map((i) => this.loads[i] ?? 0),
    );
    return choice.kind === "chosen" ? { ...choice, index: up[choice.index]! } : choice;
  }

  private async buildHere(input: RunBuildInput, signal: AbortSignal, hooks?: BuildHooks) {
    this.localJobs++;
    try {
      return await super.runBuild(input, signal, hooks);
    } finally {
      this.localJobs--;
      this.wakeAll();
    }
  }

  private async buildOn(
    index: number,
    input: RunBuildInput,
    signal: AbortSignal,
    hooks?: BuildHooks,
  ): Promise<BuildAttempt> {
    this.loads[index] = (this.loads[index] ?? 0) + 1;
    const log = logPaths(this.store.layout.logDir, input.drvPath);
    mkdirSync(log.dir, { recursive: true });
    const fd = openSync(log.raw, "w");
    let session: MachineSession | undefined;
    let lines: LogLineSink | undefined;
    try {
      session =
        this.idle[index]?.pop() ?? (await openMachineSession(this.store, this.machines[index]!));
      const current = session;
      current.logBytes = 0;
      // The machine's stderr is the build log: lines too, when a listener wants them.
      lines = hooks?.builderLog ? new LogLineSink((l) => hooks.builderLog?.(l)) : undefined;
      const toLines = lines?.push;
      current.logTo = (chunk) => {
        current.logBytes = (current.logBytes ?? 0) + chunk.length;
        writeSync(fd, chunk);
        toLines?.(chunk);
      };
      const s = this.settings;
      const settings = {
        maxSilentTime: s.maxSilentTime,
        buildTimeout: s.buildTimeout,
        maxLogSize: s.maxLogSize,
      };
      const r = await buildRemotely(this.store, session, input, settings, signal, hooks);
      session.logTo = undefined;
      if (r.reusable && !this.closing) {
        const idle = this.idle[index] ?? [];
        idle.push(session);
        this.idle[index] = idle;
        session = undefined;
      }
      return r.attempt;
    } finally {
      if (session) {
        session.logTo = undefined;
        this.inBackground(closeMachineSession(session));
      }
      closeSync(fd);
      lines?.end();
      // An empty log is removed rather than compressed.
      this.inBackground(compressLog(log.raw, log.compressed).catch(() => {}));
      this.loads[index] = (this.loads[index] ?? 1) - 1;
      this.wakeAll();
    }
  }

  /** Close the sessions kept open for the next builds, then wait for the clean-ups. */
  override async drain(): Promise<void> {
    this.closing = true;
    for (const sessions of this.idle) {
      for (const session of sessions ?? []) this.inBackground(closeMachineSession(session));
    }
    this.idle.length = 0;
    await super.drain();
  }

  /** Resolves true when a build ends somewhere, false when `signal` aborts first. */
  private waitForChange(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const wake = () => {
        signal.removeEventListener("abort", onAbort);
        resolve(true);
      };
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== wake);
        resolve(false);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(wake);
    });
  }

  private wakeAll(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
