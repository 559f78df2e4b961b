// The main side of the spawner: a small separate process that starts builders (forking from the
// busy main process is slow and grows with its heap). It is the Python one in spawner-python.ts
// (posix_spawn) when a system Python 3 is installed, else the Perl one in spawner-perl.ts (fork;
// every Debian system has perl), else the Node one in spawner-process.ts. One spawner serves a
// whole run and is started on first use; replies give each builder's pid and exit status.
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants as fsConstants, statSync } from "node:fs";
import { constants } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { packageRoot, runningFromSources } from "./package-files.ts";
import { PERL_SPAWNER } from "./spawner-perl.ts";
import type { SpawnEndReason, SpawnReply, SpawnRequest } from "./spawner-process.ts";
import { PYTHON_SPAWNER } from "./spawner-python.ts";

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
  /** Whether its output ended, or the spawner killed it for too much log or silence. */
  why: SpawnEndReason;
}

/** Nix's output locks, held by the spawner process (Node has no flock); see spawner-perl.ts. */
export interface FileLocks {
  /**
   * Release them: the spawner deletes the lock files, as Nix does once the paths are valid. Nix
   * keeps them after a failure; nixstate leaves nothing behind either way, which waiters handle
   * alike: a deleted lock file is marked, and whoever then gets it opens a new one. The request
   * goes with the next one (see `locksReleased` to wait until it is carried out).
   */
  release(): void;
  /** Whether each path existed once the locks were held; absent when the spawner cannot say. */
  readonly onDisk?: readonly boolean[];
}

type LockReply =
  | { id: number; lock: "held"; onDisk: string }
  | { id: number; lock: "busy" }
  | { id: number; lockError: string };

/** A chunk of a builder's output, forwarded because its request asked for it. */
type OutputReply = { id: number; chunk: Buffer };

interface Pending {
  started: [(pid: number) => void, (e: Error) => void];
  exited: [(r: BuilderEnd) => void, (e: Error) => void];
  output?: ((chunk: Buffer) => void) | undefined;
}

export class SpawnerError extends Error {
  override name = "SpawnerError";
}

/** How the main process talks to one kind of spawner. */
interface SpawnerKind {
  command: [string, string[]];
  encode(req: SpawnRequest): string;
  decode(line: string): Exclude<SpawnReply, { out: string }> | LockReply | OutputReply;
  /** Requests to take or drop output locks; absent: this spawner cannot hold flocks. */
  encodeLock?(id: number, paths: string[]): string;
  encodeUnlock?(id: number): string;
}

function nodeSpawner(): SpawnerKind {
  // From the TypeScript sources (development, tests) the child needs tsx to load them; a build
  // (tsc's files or the bundle) uses tsc's spawner-process.js.
  const fromSources = runningFromSources();
  const script = join(
    packageRoot(),
    fromSources ? "src/builder/spawner-process.ts" : "dist/builder/spawner-process.js",
  );
  const args = fromSources
    ? ["--import", import.meta.resolve("tsx/esm"), script, "--serve-spawns"]
    : [script, "--serve-spawns"];
  return {
    command: [process.execPath, args],
    encode: (req) => `${JSON.stringify(req)}\n`,
    decode: (line) => {
      const r = JSON.parse(line) as SpawnReply;
      return "out" in r ? { id: r.id, chunk: Buffer.from(r.out, "base64") } : r;
    },
  };
}

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name]));

/** The Perl and Python spawners speak the same protocol (spawner-perl.ts). */
function lineSpawner(command: [string, string[]]): SpawnerKind {
  const nul = (f: string | number) => `${f}\0`;
  return {
    command,
    encode: (r) =>
      [
        "S",
        r.id,
        r.cmd,
        r.cwd,
        r.log,
        r.maxLogSize,
        r.maxSilentMs,
        r.outputFd,
        r.forwardOutput ? 1 : 0,
        r.args.length,
        ...r.args,
        Object.keys(r.env).length,
      ]
        .map(nul)
        .join("") +
      Object.entries(r.env)
        .map(([k, v]) => nul(`${k}=${v}`))
        .join(""),
    encodeLock: (id, paths) => ["L", id, paths.length, ...paths].map(nul).join(""),
    encodeUnlock: (id) => ["U", id].map(nul).join(""),
    decode: (line) => {
      const [kind, id, a, b, c, why] = line.split(" ");
      if (kind === "O") return { id: Number(id), chunk: Buffer.from(a ?? "", "hex") };
      if (kind === "P") return { id: Number(id), pid: Number(a) };
      if (kind === "L") {
        return a === "E"
          ? { id: Number(id), lockError: line.split(" ").slice(3).join(" ") }
          : a === "1"
            ? { id: Number(id), lock: "held", onDisk: b ?? "" }
            : { id: Number(id), lock: "busy" };
      }
      if (kind === "E") return { id: Number(id), error: line.split(" ").slice(2).join(" ") };
      const code = Number(a);
      return {
        id: Number(id),
        code: code < 0 ? null : code,
        signal: code < 0 ? (SIGNAL_NAMES.get(Number(b)) ?? `SIG${b}`) : null,
        logSize: Number(c),
        why: why as SpawnEndReason,
      };
    },
  };
}

/** An executable on PATH, found without starting a shell (every serve session looks once). */
function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const candidate = join(dir || ".", name);
    if (executable(candidate)) return candidate;
  }
  return undefined;
}

export type SpawnerName = "python" | "perl" | "node";

/**
 * The system's Python 3, not one found on PATH first: a version manager's shim there (pyenv's is
 * a shell script) would cost a quarter of a second a run.
 */
const SYSTEM_PYTHONS = ["/usr/bin/python3", "/usr/local/bin/python3"];

function executable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Python when the system has it (posix_spawn: see spawner-python.ts), else Perl (every Debian
 * system has it), else a second Node process; `prefer` (or NIXSTATE_SPAWNER) picks one, falling
 * back the same way when it is missing.
 */
function chooseSpawner(prefer: SpawnerName | undefined): SpawnerKind {
  const wanted = prefer ?? (process.env.NIXSTATE_SPAWNER as SpawnerName | undefined);
  if (wanted === undefined || wanted === "python") {
    const python = SYSTEM_PYTHONS.find(executable);
    // -I: no user site, no PYTHON* variables; -S: no site module (a third of the start).
    if (python) return lineSpawner([python, ["-I", "-S", "-c", PYTHON_SPAWNER]]);
  }
  if (wanted !== "node") {
    const perl = findOnPath("perl");
    if (perl) return lineSpawner([perl, ["-e", PERL_SPAWNER]]);
  }
  return nodeSpawner();
}

/** Whether `name`'s interpreter is here (tests run every spawner that is). */
export function spawnerAvailable(name: SpawnerName): boolean {
  if (name === "python") return SYSTEM_PYTHONS.some(executable);
  if (name === "perl") return findOnPath("perl") !== undefined;
  return true;
}

let defaultKind: SpawnerKind | undefined;

export class Spawner {
  private child: ChildProcess | undefined;
  private kind: SpawnerKind | undefined;

  /** `prefer`: which spawner to use (tests run each); default Python, else Perl, if present. */
  constructor(private readonly prefer?: SpawnerName) {}
  private nextId = 1;
  /** Whether a lock was ever asked for (locksReleased has then something to wait for). */
  private lockedAny = false;
  /** Releases not yet written (sendLater). */
  private later = "";
  private laterTimer: NodeJS.Immediate | undefined;
  private readonly pending = new Map<number, Pending>();
  /** Lock requests waiting for their answer: the paths' on-disk flags, or undefined if busy. */
  private readonly lockWaits = new Map<
    number,
    [(onDisk: string | undefined) => void, (e: Error) => void]
  >();

  /** Start the spawner process now, without keeping this process alive while it is idle. */
  start(): void {
    this.ensure();
    if (this.pending.size === 0 && this.lockWaits.size === 0) this.setRef(false);
  }

  private ensure(): ChildProcess {
    if (this.child) return this.child;
    defaultKind ??= chooseSpawner(undefined);
    const kind = this.prefer ? chooseSpawner(this.prefer) : defaultKind;
    const [cmd, args] = kind.command;
    // Plain child_process, not execa: loading and running execa was ~45 ms of CPU before the
    // first build of every run. No cleanup on exit: the spawner must see its stdin close to kill
    // its builders' process groups (a SIGTERM would kill the spawner alone).
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "inherit"] });
    this.kind = kind;
    let ended = false;
    const end = (how: string | undefined, cause?: Error) => {
      if (ended) return;
      ended = true;
      if (this.child === child) {
        this.child = undefined;
        this.cancelLater();
      }
      const err = new SpawnerError(
        how === undefined
          ? `cannot start the builder spawner '${cmd}': ${cause?.message ?? "unknown error"}`
          : `the builder spawner process ended (${how})`,
      );
      for (const p of this.pending.values()) {
        p.started[1](err);
        p.exited[1](err);
      }
      this.pending.clear();
      for (const w of this.lockWaits.values()) w[1](err);
      this.lockWaits.clear();
    };
    // 'error' without a pid: it never ran (ENOENT, EACCES; with EMFILE not even its pipes were
    // made). 'close': it exited and every reply it wrote has been read.
    child.on("error", (e) => {
      if (child.pid === undefined) end(undefined, e);
    });
    child.on("close", (code, signal) => {
      end(signal ?? (code === null ? undefined : `exit code ${code}`));
    });
    // A write after the spawner died fails here; its end is reported once, above.
    child.stdin?.on("error", () => {});
    if (child.stdout) {
      const lines = createInterface({ input: child.stdout });
      lines.on("line", (line) => this.reply(kind.decode(line)));
    }
    this.child = child;
    return child;
  }

  /** Keep the event loop alive only while builders are running. */
  private setRef(on: boolean): void {
    const c = this.child;
    if (!c) return;
    const handles = [c, c.stdout, c.stdin].filter(Boolean); // no pipes: it could not start
    for (const h of handles as unknown as { ref(): void; unref(): void }[]) {
      if (on) h.ref();
      else h.unref();
    }
  }

  private reply(r: ReturnType<SpawnerKind["decode"]>): void {
    if ("chunk" in r) {
      this.pending.get(r.id)?.output?.(r.chunk);
      return;
    }
    if ("lock" in r || "lockError" in r) {
      const w = this.lockWaits.get(r.id);
      this.lockWaits.delete(r.id);
      if (this.lockWaits.size === 0 && this.pending.size === 0) this.setRef(false);
      if ("lockError" in r) w?.[1](new SpawnerError(r.lockError));
      else w?.[0](r.lock === "held" ? r.onDisk : undefined);
      return;
    }
    const p = this.pending.get(r.id);
    if (!p) return;
    if (!("pid" in r) && this.pending.size === 1 && this.lockWaits.size === 0) this.setRef(false);
    if ("pid" in r) p.started[0](r.pid);
    else if ("error" in r) {
      this.pending.delete(r.id);
      p.started[1](new SpawnerError(r.error));
      p.exited[1](new SpawnerError(r.error));
    } else {
      this.pending.delete(r.id);
      p.exited[0]({
        code: r.code,
        signal: r.signal as NodeJS.Signals | null,
        logSize: r.logSize,
        why: r.why,
      });
    }
  }

  /**
   * Start a builder. With `onOutput`, the spawner also sends each chunk of its output here, in
   * order, all of them before `exited` resolves (the log file gets them all the same).
   */
  spawn(
    req: Omit<SpawnRequest, "id" | "forwardOutput">,
    onOutput?: (chunk: Buffer) => void,
  ): SpawnedBuilder {
    const child = this.ensure();
    const id = this.nextId++;
    const p = { output: onOutput } as Pending;
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
    this.send(child, this.kind!.encode({ id, ...req, forwardOutput: onOutput !== undefined }));
    return { started, exited };
  }

  /**
   * Take Nix's `flock` on `<path>.lock` for every one of `paths` (real paths), all or none, never
   * waiting: undefined when any is held elsewhere (by Nix or another nixstate). Without a spawner
   * that can hold flocks (Perl), the store's own lock rows are all there is.
   */
  async tryLockFiles(paths: string[]): Promise<FileLocks | undefined> {
    const child = this.ensure();
    const kind = this.kind!;
    if (!kind.encodeLock || !kind.encodeUnlock) return { release: () => {} };
    const id = this.nextId++;
    this.lockedAny = true;
    const held = new Promise<string | undefined>((res, rej) => this.lockWaits.set(id, [res, rej]));
    this.setRef(true);
    this.send(child, kind.encodeLock(id, paths));
    const flags = await held;
    if (flags === undefined) return undefined;
    const unlock = kind.encodeUnlock;
    let released = false;
    return {
      ...(flags.length === paths.length ? { onDisk: [...flags].map((f) => f === "1") } : {}),
      release: () => {
        if (released || this.child !== child) return;
        released = true;
        this.sendLater(child, unlock(id));
      },
    };
  }

  /**
   * Resolves once the spawner has dealt with every lock release written so far: their lock files
   * are gone, as Nix's are when its goals end. The spawner answers requests in order, so the
   * answer to an empty lock request comes after them.
   */
  async locksReleased(): Promise<void> {
    // No lock taken, none to wait for (a spawner started early for a run with nothing to build).
    if (!this.child || !this.kind?.encodeLock || !this.lockedAny) return;
    try {
      (await this.tryLockFiles([]))?.release();
    } catch {
      // The spawner died (Ctrl-C reaches it too): its flocks went with it, and a lock file it
      // left is opened anew by whoever takes it next. Nothing to wait for.
    }
  }

  /** Write `request`, after any releases waiting to go. */
  private send(child: ChildProcess, request: string): void {
    const later = this.later;
    this.cancelLater();
    child.stdin?.write(later + request); // none: it could not start, and says so (see ensure)
  }

  /**
   * Releases go with the next request, or at the end of this turn of the event loop: each write
   * wakes the spawner, which then takes a core from the builders and this thread (a build
   * released its locks, and the goals it held up ask for theirs, all in one turn).
   */
  private sendLater(child: ChildProcess, request: string): void {
    this.later += request;
    this.laterTimer ??= setImmediate(() => {
      this.laterTimer = undefined;
      if (this.child === child && this.later) this.send(child, "");
    });
  }

  private cancelLater(): void {
    this.later = "";
    if (this.laterTimer) clearImmediate(this.laterTimer);
    this.laterTimer = undefined;
  }

  /** Stop the spawner (its running builders are killed by it). */
  close(): void {
    if (this.child && this.later) this.send(this.child, "");
    this.child?.stdin?.end();
    this.child = undefined;
  }
}
