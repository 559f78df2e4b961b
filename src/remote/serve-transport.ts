// Starting a serve program and handing its stdio to a ServeClient: a local subprocess
// (`nixstate serve --write`, `nix-store --serve --write`) or ssh the way Nix 2.8 starts it
// (legacy-ssh-store.cc, ssh.cc): `ssh HOST -x -a [NIX_SSHOPTS…] [-i KEY] [-C] 'PROGRAM --serve
// --write [--store URI]'`, with `localhost` run directly (`bash -c`, no ssh) as Nix does.
// stderr is not protocol (build logs, the server's `error: …`): it is collected, its tail goes
// into ServeClientErrors, and callers may watch it live.

import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ExecaError, Result } from "execa";
import { nixstateBin } from "../builder/package-files.ts";
import { execa } from "../io/on-demand.ts";
import type { StoreDir } from "../store-path/store-path.ts";
import { ServeClient, type ServeClientOptions } from "./serve-client.ts";

/** How much of the server's stderr is kept for error messages. */
const STDERR_TAIL_BYTES = 16 * 1024;
/** How long a hung-up client waits for the server to exit so its last words are in stderr. */
const EXIT_GRACE_MS = 2000;

export class ServeTransportError extends Error {
  override name = "ServeTransportError";
}

export interface ServeProcessOptions
  extends Omit<ServeClientOptions, "storeDir" | "stderrTail" | "server"> {
  storeDir: StoreDir;
  /** Environment of the child (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Each chunk the server writes on stderr (build logs, its error), as it arrives. */
  onStderr?: (chunk: Buffer) => void;
  /** Names the server in messages (default: the command line). */
  server?: string;
}

export interface ServeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServeProcess {
  client: ServeClient;
  child: ChildProcess;
  /** The command line started. */
  argv: string[];
  /** The last STDERR_TAIL_BYTES bytes of the server's stderr so far. */
  stderr(): string;
  exited: Promise<ServeExit>;
  /** Close the session (the server exits on end of file) and wait for the process. */
  close(): Promise<ServeExit>;
}

/** How a serve process ended; `startError` when it could not be started at all. */
interface ServeEnd {
  exit: ServeExit;
  startError: Error | undefined;
}

function serveEnd(result: Result | ExecaError): ServeEnd {
  const exit: ServeExit = { code: result.exitCode ?? null, signal: result.signal ?? null };
  // No exit code and no signal: the process never ran (e.g. ENOENT); execa keeps the spawn error
  // as `cause`. Reported as an exit with neither, as before.
  const notStarted = result.failed && result.exitCode === undefined && result.signal === undefined;
  const cause = "cause" in result ? result.cause : undefined;
  return { exit, startError: notStarted && cause instanceof Error ? cause : undefined };
}

/** Start `argv` and connect a ServeClient to it (handshake included). */
export async function startServe(
  argv: string[],
  options: ServeProcessOptions,
): Promise<ServeProcess> {
  const [program, ...args] = argv;
  if (program === undefined) throw new ServeTransportError("no serve command given");
  const child = execa(program, args, {
    env: options.env ?? process.env,
    // Exactly the environment given, not merged into this process's.
    extendEnv: false,
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    // stdout is the protocol and stderr is collected below: both are read here, as raw bytes.
    buffer: false,
    encoding: "buffer",
    // A non-zero exit or a failed start is a result (see `ended`), not a rejection.
    reject: false,
    // The session ends when our end of its stdin closes, also when this process dies: no SIGTERM
    // on exit, no SIGKILL after kill(); and NODE_DEBUG=execa must not read the protocol stream.
    cleanup: false,
    forceKillAfterDelay: false,
    verbose: "none",
  });
  // With `buffer: false` execa resumes (and so discards) an output nobody reads by the next turn
  // of the event loop; the client starts reading stdout only when it waits for the greeting.
  child.stdout.pause();
  let tail = Buffer.alloc(0);
  child.stderr.on("data", (chunk: Buffer) => {
    options.onStderr?.(chunk);
    tail = Buffer.concat([tail, chunk]);
    if (tail.length > STDERR_TAIL_BYTES) tail = tail.subarray(tail.length - STDERR_TAIL_BYTES);
  });
  // Settles once the process has exited and its stdio is closed (or it could not be started).
  const ended: Promise<ServeEnd> = child.then(serveEnd, (error: unknown) => ({
    exit: { code: null, signal: null },
    startError: error instanceof Error ? error : new Error(String(error)),
  }));
  const exited = ended.then((end) => end.exit);
  const stderr = () => tail.toString("utf8");
  const server = options.server ?? argv.join(" ");
  const stderrTail = async (hungUp: boolean): Promise<string> => {
    if (!hungUp) return stderr();
    const timeout = new Promise<"timeout">((resolve) => {
      setTimeout(() => resolve("timeout"), EXIT_GRACE_MS).unref();
    });
    const how = await Promise.race([ended, timeout]);
    if (how !== "timeout" && how.startError) {
      return `cannot start '${program}': ${how.startError.message}`;
    }
    const exit =
      how === "timeout"
        ? ""
        : how.exit.signal
          ? `\n(killed by ${how.exit.signal})`
          : how.exit.code !== null && how.exit.code !== 0
            ? `\n(exit status ${how.exit.code})`
            : "";
    return `${stderr()}${exit}`;
  };
  const client = new ServeClient(child.stdout, child.stdin, {
    ...options,
    server,
    stderrTail,
  });
  const close = async (): Promise<ServeExit> => {
    await client.close();
    const timer = setTimeout(() => child.kill("SIGTERM"), 10_000);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  try {
    await client.connect();
  } catch (error) {
    child.kill("SIGTERM");
    await exited;
    throw error;
  }
  return { client, child, argv, stderr, exited, close };
}

/** `node bin/nixstate.js serve --write [--state-dir D] [--store-dir S]` on this machine. */
export function nixstateServeCommand(
  options: { stateDir?: string; storeDir?: string; write?: boolean; nix28Compat?: boolean } = {},
): string[] {
  return [
    process.execPath,
    nixstateBin(),
    "serve",
    ...(options.write === false ? [] : ["--write"]),
    ...(options.nix28Compat ? ["--nix28-compat"] : []),
    ...(options.stateDir ? ["--state-dir", options.stateDir] : []),
    ...(options.storeDir ? ["--store-dir", options.storeDir] : []),
  ];
}

/** `nix-store --serve --write` (or another program speaking it), run locally. */
export function nixStoreServeCommand(
  options: { program?: string; write?: boolean } = {},
): string[] {
  return [
    options.program ?? "nix-store",
    "--serve",
    ...(options.write === false ? [] : ["--write"]),
  ];
}

/** What an `ssh://[user@]host[:port]?remote-program=…&ssh-key=…` store URI says. */
export interface SshStoreUri {
  /** Host name, without user and port (brackets of an IPv6 literal removed). */
  host: string;
  user: string | undefined;
  port: number | undefined;
  /** The program run remotely as `PROGRAM --serve --write` (default `nix-store`; may hold words). */
  remoteProgram: string;
  /** `remote-store=URI`: appended as `--store URI`. */
  remoteStore: string | undefined;
  /** `ssh-key=PATH`: passed as `-i PATH`. */
  sshKey: string | undefined;
  /** `compress=true`: `-C`. */
  compress: boolean;
  /** `base64-ssh-public-host-key=B64`: the host's public key line, pinned as Nix 2.8 does. */
  sshPublicHostKey: string | undefined;
}

export function parseSshStoreUri(uri: string): SshStoreUri {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new ServeTransportError(
      `'${uri}' is not a store URI (expected ssh://[user@]host[:port])`,
    );
  }
  if (url.protocol !== "ssh:") {
    throw new ServeTransportError(`'${uri}' is not an ssh:// store URI`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (host === "") throw new ServeTransportError(`'${uri}' names no host`);
  if (url.pathname !== "" && url.pathname !== "/") {
    throw new ServeTransportError(`'${uri}': an ssh:// store URI has no path`);
  }
  const q = url.searchParams;
  const known = new Set([
    "remote-program",
    "remote-store",
    "ssh-key",
    "compress",
    "max-connections",
    "base64-ssh-public-host-key",
  ]);
  for (const key of q.keys()) {
    if (!known.has(key)) {
      throw new ServeTransportError(
        `'${uri}': unknown setting '${key}' (known: ${[...known].join(", ")})`,
      );
    }
  }
  return {
    host,
    user: url.username === "" ? undefined : decodeURIComponent(url.username),
    port: url.port === "" ? undefined : Number(url.port),
    remoteProgram: q.get("remote-program") || "nix-store",
    remoteStore: q.get("remote-store") || undefined,
    sshKey: q.get("ssh-key") || undefined,
    compress: q.get("compress") === "true",
    sshPublicHostKey: q.get("base64-ssh-public-host-key") || undefined,
  };
}

/** The remote command line, one string as Nix passes it to ssh (and ssh to the remote shell). */
export function remoteServeCommand(target: SshStoreUri): string {
  const store = target.remoteStore ? ` --store ${shellEscape(target.remoteStore)}` : "";
  return `${target.remoteProgram} --serve --write${store}`;
}

/**
 * What Nix 2.8 runs: `ssh [user@]host -x -a NIX_SSHOPTS… [-i key] [-C] [-p port] CMD`
 * (NIX_SSHOPTS split on whitespace, no quoting, as Nix's tokenizeString does), or `bash -c CMD`
 * for the host `localhost`.
 */
export function sshServeCommand(
  target: SshStoreUri,
  env: NodeJS.ProcessEnv = process.env,
  /** A known-hosts file holding the pinned host key (see startSshServe). */
  knownHostsFile?: string,
): string[] {
  const command = remoteServeCommand(target);
  if (target.host === "localhost" && target.user === undefined && target.port === undefined) {
    return ["bash", "-c", command];
  }
  const destination = target.user === undefined ? target.host : `${target.user}@${target.host}`;
  const sshOpts = (env.NIX_SSHOPTS ?? "").split(/\s+/).filter((s) => s !== "");
  return [
    "ssh",
    destination,
    "-x",
    "-a",
    ...sshOpts,
    ...(target.sshKey ? ["-i", target.sshKey] : []),
    ...(knownHostsFile ? [`-oUserKnownHostsFile=${knownHostsFile}`] : []),
    ...(target.compress ? ["-C"] : []),
    ...(target.port !== undefined ? ["-p", String(target.port)] : []),
    command,
  ];
}

/**
 * Connect to an `ssh://` store URI (ssh found on the PATH of `options.env`). A pinned host key is
 * written to a known-hosts file for this session, as Nix 2.8's SSHMaster::addCommonSSHOpts does.
 */
export async function startSshServe(
  uri: string,
  options: ServeProcessOptions,
): Promise<ServeProcess> {
  const target = parseSshStoreUri(uri);
  let dir: string | undefined;
  let knownHosts: string | undefined;
  if (target.sshPublicHostKey) {
    dir = mkdtempSync(join(tmpdir(), "nixstate-ssh-"));
    knownHosts = join(dir, "known_hosts");
    // ssh looks a host on another port up as `[host]:port` (Nix 2.8 has no port in the URI).
    const name = target.port === undefined ? target.host : `[${target.host}]:${target.port}`;
    const key = Buffer.from(target.sshPublicHostKey, "base64").toString("utf8").trim();
    writeFileSync(knownHosts, `${name} ${key}\n`);
  }
  const cleanup = () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const serve = await startServe(sshServeCommand(target, options.env, knownHosts), {
      ...options,
      server: options.server ?? target.host,
    });
    void serve.exited.then(cleanup);
    return serve;
  } catch (error) {
    cleanup();
    throw error;
  }
}

/** Quote for a POSIX shell, as Nix's shellEscape does. */
function shellEscape(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
