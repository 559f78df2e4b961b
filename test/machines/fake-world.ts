// An in-memory world for goal machines: derivations, valid paths, builders that succeed or
// fail on command, and a lock another "process" can hold. No files, no processes.

import type { Derivation, DerivationOutput } from "../../src/derivation/derivation.ts";
import type { BuildAttempt, OutputStatus } from "../../src/machines/build-attempt.ts";
import type {
  OutputLock,
  SubstitutionEffects,
  WorkerEffects,
} from "../../src/machines/worker-effects.ts";

export interface FakeDrv {
  name: string;
  outputs?: string[];
  deps?: string[];
  srcs?: string[];
  fail?: boolean;
  /** Builder "runs" this many ms. */
  ms?: number;
  fixed?: boolean;
}

export class FakeWorld implements WorkerEffects {
  drvs = new Map<string, Derivation>();
  valid = new Set<string>();
  failedBefore = new Set<string>();
  builds: string[] = [];
  running = 0;
  maxRunning = 0;
  failing = new Set<string>();
  durations = new Map<string, number>();
  /** Drv paths whose lock is held elsewhere for this many more attempts. */
  lockedElsewhere = new Map<string, number>();
  /** Drv paths whose outputs become valid (by "another process") when we get the lock. */
  beatenBy = new Set<string>();
  killed: string[] = [];
  /** Substituters (see fake-substituters.ts); none by default. */
  substitution: SubstitutionEffects | undefined = undefined;

  drvPath(name: string): string {
    return `/s/${name.padEnd(32, "0").slice(0, 32)}-${name}.drv`;
  }

  outPath(name: string, output: string): string {
    return `/s/${`o${name}${output}`.padEnd(32, "0").slice(0, 32)}-${name}${output === "out" ? "" : `-${output}`}`;
  }

  add(d: FakeDrv): string {
    const path = this.drvPath(d.name);
    const outputs = new Map<string, DerivationOutput>(
      (d.outputs ?? ["out"]).map((o) => [
        o,
        { type: "inputAddressed", path: this.outPath(d.name, o) },
      ]),
    );
    const drv: Derivation = {
      name: d.name,
      outputs,
      inputDrvs: new Map((d.deps ?? []).map((dep) => [this.drvPath(dep), ["out"]])),
      inputSrcs: d.srcs ?? [],
      platform: "x86_64-linux",
      builder: "/bin/sh",
      args: [],
      env: new Map(d.fixed ? [["outputHash", "x"]] : []),
    };
    if (d.fixed) {
      drv.outputs = new Map([
        ["out", { ...(outputs.get("out") as { path: string }), type: "inputAddressed" }],
      ]);
    }
    this.drvs.set(path, drv);
    this.valid.add(path);
    if (d.fail) this.failing.add(path);
    if (d.ms !== undefined) this.durations.set(path, d.ms);
    return path;
  }

  isValidPath(path: string): boolean {
    return this.valid.has(path);
  }

  readDerivation(drvPath: string): Derivation {
    const d = this.drvs.get(drvPath);
    if (!d) throw new Error(`no derivation ${drvPath}`);
    return d;
  }

  queryOutputs(input: {
    drvPath: string;
    drv: { outputs: Map<string, DerivationOutput> };
    wantedOutputs: string[];
  }): OutputStatus[] {
    return [...input.drv.outputs].map(([name, o]) => {
      const path = o.type === "deferred" ? "" : o.path;
      return {
        name,
        path,
        id: `sha256:fake!${name}`,
        valid: this.valid.has(path),
        wanted: input.wantedOutputs.length === 0 || input.wantedOutputs.includes(name),
        failedBefore: this.failedBefore.has(path),
      };
    });
  }

  computeInputPaths(input: {
    drv: { inputSrcs: string[] };
    inputDrvOutputs: Record<string, string>;
  }): string[] {
    return [...input.drv.inputSrcs, ...Object.values(input.inputDrvOutputs)];
  }

  tryLockOutputs(drvPath: string): OutputLock | undefined {
    const n = this.lockedElsewhere.get(drvPath) ?? 0;
    if (n > 0) {
      this.lockedElsewhere.set(drvPath, n - 1);
      return undefined;
    }
    if (this.beatenBy.has(drvPath)) {
      for (const [, o] of this.drvs.get(drvPath)!.outputs)
        if (o.type !== "deferred") this.valid.add(o.path);
    }
    return { release: () => {} };
  }

  async runBuild(
    input: { drvPath: string; outputs: OutputStatus[] },
    signal: AbortSignal,
  ): Promise<BuildAttempt> {
    this.builds.push(input.drvPath);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, this.durations.get(input.drvPath) ?? 1);
        signal.addEventListener("abort", () => {
          clearTimeout(t);
          this.killed.push(input.drvPath);
          reject(new Error("killed"));
        });
      });
    } finally {
      this.running--;
    }
    if (this.failing.has(input.drvPath)) {
      return {
        kind: "builderFailed",
        how: "failed with exit code 1",
        logTail: [],
        startTime: 1,
        stopTime: 2,
      };
    }
    const builtOutputs: Record<string, { id: string; outPath: string }> = {};
    for (const o of input.outputs) {
      this.valid.add(o.path);
      builtOutputs[o.name] = { id: o.id, outPath: o.path };
    }
    return { kind: "success", builtOutputs, startTime: 1, stopTime: 2 };
  }
}
