// A real OpenSSH server for interop tests: Debian's /usr/sbin/sshd in the foreground on
// 127.0.0.1, with its own host key, config, authorized client key and pid file in a temp
// folder, so nothing of the machine's ssh setup is used or changed (except /run/sshd, the
// privilege separation directory sshd insists on). Needs root: sshd logs in as root there.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const SSHD = "/usr/sbin/sshd";
const SSH_KEYGEN = "ssh-keygen";
const HOST = "127.0.0.1";

/** Whether sshd tests can run: root and an installed openssh-server; in CI its absence is an error. */
export function haveSshd(): boolean {
  const ok = existsSync(SSHD) && process.getuid?.() === 0;
  if (!ok && process.env.CI === "true") {
    throw new Error(
      `${SSHD} not usable (needs openssh-server and root) but CI=true: ` +
        "run the tests as root and `apt-get install -y openssh-server openssh-client`",
    );
  }
  return ok;
}

export interface SshServer {
  host: string;
  port: number;
  user: string;
  /** `user@host`, for ssh:// store URLs. */
  destination: string;
  /** The temp folder with keys, config and pid file. */
  dir: string;
  /** Client options as an argv array, to put before or after the destination. */
  sshArgs: string[];
  /** The same options as NIX_SSHOPTS (Nix splits it on whitespace). */
  nixSshOpts: string;
  /** What sshd has written to stderr so far (its log, with -e). */
  log(): string;
  /**
   * Waits until the log matches: it is read by the event loop, which a test running Nix
   * synchronously has blocked, so a line may arrive only after the test yields.
   */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Stops sshd and deletes the temp folder. */
  stop(): Promise<void>;
}

export interface StartSshdOptions {
  /** How long to wait for sshd to accept connections. */
  timeoutMs?: number;
}

function keygen(path: string, comment: string): void {
  execFileSync(SSH_KEYGEN, ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path], {
    stdio: ["ignore", "pipe", "pipe"],
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once a connection to the port gets an SSH banner. */
function sshBanner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: HOST, port });
    let data = "";
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on("error", () => done(false));
    sock.on("data", (b) => {
      data += b.toString("latin1");
      if (data.includes("\n")) done(data.startsWith("SSH-"));
    });
    sock.on("end", () => done(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function writeConfig(dir: string, port: number): string {
  const config = join(dir, "sshd_config");
  writeFileSync(
    config,
    [
      `Port ${port}`,
      `ListenAddress ${HOST}`,
      `HostKey ${join(dir, "host_ed25519")}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "UsePAM no",
      "PermitRootLogin prohibit-password",
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "StrictModes no",
      "X11Forwarding no",
      "AllowAgentForwarding no",
      "PrintMotd no",
      "PrintLastLog no",
      "UseDNS no",
      "MaxStartups 64",
      "LogLevel INFO",
      "",
    ].join("\n"),
  );
  return config;
}

async function launch(
  config: string,
  port: number,
  timeoutMs: number,
): Promise<{ child: ChildProcess; log: () => string }> {
  const child = spawn(SSHD, ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (b: Buffer) => {
    stderr += b.toString("utf8");
  });
  let exited: string | undefined;
  child.on("exit", (code, signal) => {
    exited = `exit code ${code ?? `signal ${signal}`}`;
  });
  child.on("error", (e) => {
    exited = `could not start: ${e.message}`;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited) break;
    if (await sshBanner(port)) return { child, log: () => stderr };
    await sleep(50);
  }
  child.kill("SIGKILL");
  throw new Error(
    exited
      ? `sshd (${SSHD} -D -e -f ${config}) ended with ${exited} before accepting connections on port ${port}:\n${stderr}`
      : `sshd did not accept connections on ${HOST}:${port} within ${timeoutMs} ms; its log:\n${stderr}`,
  );
}

/** Starts sshd; call stop() when done (e.g. in afterAll). */
export async function startSshd(options: StartSshdOptions = {}): Promise<SshServer> {
  const dir = mkdtempSync(join(tmpdir(), "nixstate-sshd-"));
  try {
    // sshd refuses to start without its privilege separation directory.
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    const hostKey = join(dir, "host_ed25519");
    const clientKey = join(dir, "client_ed25519");
    keygen(hostKey, "nixstate-test-host");
    keygen(clientKey, "nixstate-test-client");
    writeFileSync(join(dir, "authorized_keys"), readFileSync(`${clientKey}.pub`));

    // A port can be taken between probing and sshd's bind: try a few.
    let started: { child: ChildProcess; log: () => string } | undefined;
    let port = 0;
    let lastError: unknown;
    for (let attempt = 0; attempt < 3 && !started; attempt++) {
      port = await freePort();
      try {
        started = await launch(writeConfig(dir, port), port, options.timeoutMs ?? 10_000);
      } catch (e) {
        lastError = e;
        if (!String(e).includes("Address already in use")) throw e;
      }
    }
    if (!started) throw lastError;

    const [keyType, keyData] = readFileSync(`${hostKey}.pub`, "utf8").trim().split(/\s+/);
    const knownHosts = join(dir, "known_hosts");
    writeFileSync(knownHosts, `[${HOST}]:${port} ${keyType} ${keyData}\n`);
    const sshArgs = [
      "-F",
      "/dev/null",
      "-p",
      String(port),
      "-i",
      clientKey,
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      `UserKnownHostsFile=${knownHosts}`,
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      "BatchMode=yes",
      "-o",
      "LogLevel=ERROR",
    ];
    if (sshArgs.some((a) => /\s/.test(a))) {
      throw new Error(`temp folder ${dir} has whitespace: NIX_SSHOPTS cannot carry its paths`);
    }
    const { child, log } = started;
    return {
      host: HOST,
      port,
      user: "root",
      destination: `root@${HOST}`,
      dir,
      sshArgs,
      nixSshOpts: sshArgs.join(" "),
      log,
      async waitForLog(pattern, timeoutMs = 5000) {
        const deadline = Date.now() + timeoutMs;
        while (!pattern.test(log())) {
          if (Date.now() > deadline) {
            throw new Error(`sshd log did not match ${pattern} within ${timeoutMs} ms:\n${log()}`);
          }
          await sleep(20);
        }
        return log();
      },
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          const gone = new Promise((r) => child.once("exit", r));
          child.kill("SIGTERM");
          await Promise.race([gone, sleep(5000)]);
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
