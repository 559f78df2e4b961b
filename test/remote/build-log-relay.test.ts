// The serve server's build-log relay: it follows a running build's log file, sends a flood a
// piece a poll, holds back while its reader is behind (the log waits in its file), and sends the
// rest at the end.
import { appendFileSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { logPaths } from "../../src/builder/build-log.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { BuildLogRelay } from "../../src/remote/build-log-relay.ts";

const logDir = mkdtempSync(join(tmpdir(), "nixstate-relay-"));
afterAll(() => deleteTree(logDir));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function logFile(drvPath: string): string {
  const { dir, raw } = logPaths(logDir, drvPath);
  mkdirSync(dir, { recursive: true });
  return raw;
}

describe("BuildLogRelay", () => {
  it("sends nothing while its reader is behind, then the log in pieces, then the rest", async () => {
    const drv = "/nix/store/0c7cj5vpyrvqs8dq5ggzx3pflqpzs8kv-flood.drv";
    const file = logFile(drv);
    const flood = Buffer.alloc(3 * (1 << 20) + 123, 0x61);
    appendFileSync(file, flood);
    const sent: Buffer[] = [];
    let behind = true;
    const relay = new BuildLogRelay(
      logDir,
      (b) => sent.push(Buffer.from(b)),
      () => behind,
    );
    relay.started(drv);
    await sleep(350);
    expect(sent).toEqual([]);
    behind = false;
    await sleep(250);
    // A piece of at most 1 MiB a poll.
    expect(sent.length).toBeGreaterThan(0);
    for (const piece of sent) expect(piece.length).toBeLessThanOrEqual(1 << 20);
    appendFileSync(file, "tail\n");
    relay.finished(drv);
    await relay.flush();
    expect(Buffer.concat(sent).equals(Buffer.concat([flood, Buffer.from("tail\n")]))).toBe(true);
  });
});
