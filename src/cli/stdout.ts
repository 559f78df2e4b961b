import { once } from "node:events";
import { fstatSync, openSync } from "node:fs";

/**
 * A descriptor for stdout that blocks on writes. Node makes a pipe on fd 1 non-blocking; opening
 * it again through /proc gives a pipe a file description of its own, in blocking mode.
 */
export function blockingStdout(): number {
  return blockingStdoutFor(false) ?? 1;
}

/**
 * A blocking descriptor for a protocol server's replies, or undefined when stdout is the very
 * socket stdin reads from (sshd may hand both ends over as one socket): a blocking read there
 * would stall the event loop, so that stays a stream. A socket's description is shared with
 * process.stdout's stream, which Node created non-blocking: it is switched back.
 */
export function blockingReplyFd(): number | undefined {
  return blockingStdoutFor(true);
}

function blockingStdoutFor(readsStdin: boolean): number | undefined {
  const out = fstatSync(1);
  if (out.isSocket()) {
    const input = fstatSync(0);
    if (readsStdin && input.isSocket() && input.ino === out.ino && input.dev === out.dev) {
      return undefined;
    }
    const handle = (process.stdout as unknown as { _handle?: { setBlocking?(on: boolean): void } })
      ._handle;
    handle?.setBlocking?.(true);
    return 1;
  }
  return reopenedStdout();
}

function reopenedStdout(): number {
  if (!fstatSync(1).isFIFO()) return 1;
  try {
    return openSync("/proc/self/fd/1", "w");
  } catch {
    return 1;
  }
}

/** Write bytes to stdout and wait until they are flushed (stdout may be a pipe). */
export async function writeStdout(data: Uint8Array | string): Promise<void> {
  if (!process.stdout.write(data)) await once(process.stdout, "drain");
}
