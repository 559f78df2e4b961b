// The main side of the spawner process (spawner-process.ts): start builders there and get their
// pid and exit status back. One spawner serves a whole run; it is started on first use.
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { SpawnReply, SpawnRequest } from "./spawner-process.ts";

export interface SpawnedBuilder {
  /** Resolves once the builder runs (with its pid), rejects if it could not be started. */
  started: Promise<number>;
  exited: Promise<BuilderEnd>;
}

export interface BuilderEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Bytes of log written; an empty log file has been removed. */
  logSize: number;
}

interface Pending {
  started: [(pid: number) => void, (e: Error) => void];
  exited: [(r: BuilderEnd) => void, (e: Error) => void];
}

export class SpawnerError extends Error {
  override name = "SpawnerError";
}

function spawnerCommand(): string[] {
  const self = fileURLToPath(import.meta.url);
  const script = self.replace(/spawner\.(ts|js)$/, "spawner-process.$1");
  // From the TypeScript sources (development, tests) the child needs tsx to load them.
  return script.endsWith(".ts")
    ? ["--import", import.meta.resolve("tsx/esm"), script, "--serve-spawns"]
    : [script, "--serve-spawns"];
}

export class Spawner {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  private ensure(): ChildProcess {
    if (this.child) return this.child;
    const child = spawn(process.execPath, spawnerCommand(), { stdio: ["pipe", "pipe", "inherit"] });
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => this.reply(JSON.parse(line) as SpawnReply));
    child.on("exit", (code, signal) => {
      this.child = undefined;
      const err = new SpawnerError(
        `the builder spawner process ended (${signal ?? `exit code ${code}`})`,
      );
      for (const p of this.pending.values()) {
        p.started[1](err);
        p.exited[1](err);
      }
      this.pending.clear();
    });
    this.child = child;
    return child;
  }

  /** Keep the event loop alive only while builders are running. */
  private setRef(on: boolean): void {
    const c = this.child;
    if (!c) return;
    for (const h of [c, c.stdout, c.stdin] as unknown as { ref(): void; unref(): void }[]) {
      if (on) h.ref();
      else h.unref();
    }
  }

  private reply(r: SpawnReply): void {
    const p = this.pending.get(r.id);
    if (!p) return;
    if (!("pid" in r) && this.pending.size === 1) this.setRef(false);
    if ("pid" in r) p.started[0](r.pid);
    else if ("error" in r) {
      this.pending.delete(r.id);
      p.started[1](new SpawnerError(r.error));
      p.exited[1](new SpawnerError(r.error));
    } else {
      this.pending.delete(r.id);
      p.exited[0]({ code: r.code, signal: r.signal as NodeJS.Signals | null, logSize: r.logSize });
    }
  }

  spawn(req: Omit<SpawnRequest, "id">): SpawnedBuilder {
    const child = this.ensure();
    const id = this.nextId++;
    const p = {} as Pending;
    const started = new Promise<number>((res, rej) => {
      p.started = [res, rej];
    });
    const exited = new Promise<BuilderEnd>((res, rej) => {
      p.exited = [res, rej];
    });
    // Nobody may wait on `started` (e.g. after a failed start): keep that from being unhandled.
    started.catch(() => {});
    this.pending.set(id, p);
    if (this.pending.size === 1) this.setRef(true);
    child.stdin!.write(`${JSON.stringify({ id, ...req })}\n`);
    return { started, exited };
  }

  /** Stop the spawner (its running builders are killed by it). */
  close(): void {
    this.child?.stdin?.end();
    this.child = undefined;
  }
}
