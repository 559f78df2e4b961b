// The test sshd itself: it accepts the client key, pins its host key, and runs commands as root.
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { haveSshd, type SshServer, startSshd } from "./sshd.ts";

describe.runIf(haveSshd())("test sshd", () => {
  let sshd: SshServer;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  it("runs a remote command as root with the pinned host key", () => {
    const out = execFileSync("ssh", [...sshd.sshArgs, sshd.destination, "-x", "-a", "id -u"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    expect(out.trim()).toBe("0");
  });

  it("refuses a host whose key is not the pinned one", () => {
    const args = sshd.sshArgs.map((a) =>
      a.startsWith("UserKnownHostsFile=") ? "UserKnownHostsFile=/dev/null" : a,
    );
    expect(() =>
      execFileSync("ssh", [...args, sshd.destination, "true"], { stdio: "pipe" }),
    ).toThrow();
  });
});
