// Sends a run's inspector frames (src/events/inspect-frames.ts) to a WebSocket server, such as the
// relay of @statelyai/inspect's `createInspectorServer`, one JSON text message a frame.
//
// Nothing is dropped and nothing waits: frames are queued in order and written as the server
// takes them (at most HIGH_WATER bytes unacknowledged), so a slow receiver slows only the queue.
// The protocol has no acknowledgements, so a WebSocket ping follows each batch: a server answers
// pings in order with the messages before them (RFC 6455; `ws`, browsers), so its pong says every
// frame before the ping was read. When the connection drops, the sender connects again and resends
// from the first frame not acknowledged (a receiver may then see a frame twice: `seq` tells).
// Nobody listening is not an error: one warning, and the run goes on; `finish` waits a bounded
// time for the queue to drain.
import type WebSocket from "ws";
import { webSocket } from "../io/on-demand.ts";
import { type InspectFrame, InspectFrames } from "./inspect-frames.ts";
import type { RunListener } from "./run-recorder.ts";

/** The address @statelyai/inspect uses by default. */
export const DEFAULT_INSPECT_URL = "ws://127.0.0.1:8080";

/** How long a build waits at its end for the inspector to take the frames left. */
export const INSPECT_DRAIN_MS = 10_000;

/** Bytes sent and not yet acknowledged before sending pauses. */
const HIGH_WATER = 1 << 20;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 4000;

export class InspectUrlError extends Error {
  override name = "InspectUrlError";
}

/** Check an `--inspect` value: a ws:// or wss:// URL. */
export function parseInspectUrl(value: string | boolean | undefined): string {
  if (value === undefined || value === true || value === "") return DEFAULT_INSPECT_URL;
  const text = String(value);
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "ws:" && url.protocol !== "wss:"))
    throw new InspectUrlError(
      `--inspect wants a WebSocket URL, as --inspect=${DEFAULT_INSPECT_URL}, not '${text}'`,
    );
  return text;
}

export interface InspectSenderOptions {
  /** Told once when the inspector cannot be reached, and when frames are left undelivered. */
  warn: (message: string) => void;
  /** Told instead of a warning when the first connection fails (the warning is for builds). */
  unreachable?: (error: Error) => void;
  /** Bytes sent and not acknowledged before sending pauses (default HIGH_WATER). */
  highWater?: number;
  /** The command the warnings suggest to send the run later (`nixstate replay 3 --inspect`). */
  later?: () => string | undefined | 0;
}

export interface InspectSendResult {
  /** Frames the socket wrote. */
  delivered: number;
  /** Frames left in the queue. */
  pending: number;
  /** Whether a connection was ever made. */
  connected: boolean;
}

export class InspectSender {
  /** Frames not known delivered, oldest first, from `queue[head]`. */
  private queue: InspectFrame[] = [];
  private head = 0;
  /** Frames acknowledged since the start (the number of `queue[head]`, counting from 0). */
  private acked = 0;
  /** Frames after those sent on the current connection. */
  private handed = 0;
  /** Pings sent and not answered: the frame count each acknowledges, and the bytes it covers. */
  private pings: { upTo: number; bytes: number }[] = [];
  private inFlightBytes = 0;
  private ws: WebSocket | undefined;
  private open = false;
  /** Bumped when a connection ends so that what an old one says is ignored. */
  private generation = 0;
  private everConnected = false;
  private warned = false;
  private retryMs = RETRY_MIN_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  private pumpScheduled = false;
  private finishing: (() => void) | undefined;
  private stopped = false;

  constructor(
    readonly url: string,
    private readonly options: InspectSenderOptions,
  ) {
    this.connect();
  }

  /** A listener of the run's event stream that sends its frames. */
  listener(frames = new InspectFrames()): RunListener {
    return (e) => {
      if (this.stopped) return;
      try {
        const f = frames.frames(e);
        if (f.length > 0) this.send(f);
      } catch (err) {
        // The inspector is a bystander: a fault here ends inspection, never the build.
        this.options.warn(
          `warning: stopped sending the run to the XState inspector: ${err instanceof Error ? err.message : String(err)}`,
        );
        this.stop();
      }
    };
  }

  /** Queue frames; returns at once. */
  send(frames: InspectFrame[]): void {
    if (this.stopped) return;
    for (const f of frames) this.queue.push(f);
    this.schedulePump();
  }

  /** Bytes sent on this connection and not yet acknowledged. */
  get unacknowledgedBytes(): number {
    return this.inFlightBytes;
  }

  get pending(): number {
    return this.queue.length - this.head;
  }

  /**
   * Wait until every frame is delivered, at most `timeoutMs` (or until the only connection
   * attempts failed: nobody listens), then close.
   */
  async finish(timeoutMs: number): Promise<InspectSendResult> {
    if (!this.stopped) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => done(), timeoutMs);
        const done = () => {
          clearTimeout(timer);
          this.finishing = undefined;
          resolve();
        };
        this.finishing = () => {
          if (this.pending === 0 || (!this.everConnected && !this.ws)) done();
        };
        this.finishing();
      });
      this.stop();
      if (this.pending > 0 && this.everConnected)
        this.options.warn(
          `warning: ${this.pending} inspector frames were not delivered to ${this.url}${this.laterHint()}`,
        );
    }
    return { delivered: this.acked, pending: this.pending, connected: this.everConnected };
  }

  private laterHint(): string {
    const later = this.options.later?.();
    return later ? `; '${later}' sends the run again` : "";
  }

  private stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.ws?.removeAllListeners();
    this.ws?.on("error", () => {});
    this.ws?.close();
    this.ws = undefined;
    this.open = false;
  }

  private connect(): void {
    if (this.stopped) return;
    const gen = ++this.generation;
    const ws = new (webSocket())(this.url, { perMessageDeflate: false });
    this.ws = ws;
    ws.on("open", () => {
      if (gen !== this.generation) return;
      this.open = true;
      this.everConnected = true;
      this.retryMs = RETRY_MIN_MS;
      this.schedulePump();
    });
    ws.on("error", (err) => {
      if (this.warned) return;
      this.warned = true;
      if (this.options.unreachable) return this.options.unreachable(err);
      this.options.warn(
        `warning: cannot reach the XState inspector at ${this.url} (${err.message}); the build goes on and keeps trying${this.laterHint()}`,
      );
    });
    ws.on("pong", (data) => {
      if (gen === this.generation) this.acknowledge(Number(data.toString()));
    });
    ws.on("close", () => {
      if (gen !== this.generation) return;
      this.generation++;
      this.ws = undefined;
      this.open = false;
      // Resend what this connection had not acknowledged.
      this.handed = 0;
      this.pings = [];
      this.inFlightBytes = 0;
      this.finishing?.();
      if (this.stopped) return;
      this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
      this.retryTimer.unref();
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    });
  }

  private schedulePump(): void {
    if (this.pumpScheduled || !this.open) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const ws = this.ws;
    if (!ws || !this.open) return;
    let bytes = 0;
    while (
      this.head + this.handed < this.queue.length &&
      this.inFlightBytes < (this.options.highWater ?? HIGH_WATER)
    ) {
      const text = JSON.stringify(this.queue[this.head + this.handed]);
      this.handed++;
      this.inFlightBytes += text.length;
      bytes += text.length;
      ws.send(text);
    }
    if (bytes === 0) return;
    const upTo = this.acked + this.handed;
    this.pings.push({ upTo, bytes });
    ws.ping(String(upTo));
  }

  /** The server has read the first `upTo` frames. */
  private acknowledge(upTo: number): void {
    while (this.pings.length > 0 && this.pings[0]!.upTo <= upTo)
      this.inFlightBytes -= this.pings.shift()!.bytes;
    const n = upTo - this.acked;
    if (!(n > 0 && n <= this.handed)) return;
    this.acked = upTo;
    this.head += n;
    this.handed -= n;
    this.compact();
    if (this.pending === 0) this.finishing?.();
    else this.schedulePump();
  }

  /** Drop delivered frames from memory now and then. */
  private compact(): void {
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}
