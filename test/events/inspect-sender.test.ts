// The sender's queue against a relay that stops reading: what it has sent and not had acknowledged
// stays under its limit, the run's side never waits, and once the relay reads again every frame
// arrives, in order.
import { describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import type { InspectFrame } from "../../src/events/inspect-frames.ts";
import { InspectSender, parseInspectUrl } from "../../src/events/inspect-sender.ts";
import type { RunEvent } from "../../src/events/run-event.ts";
import { startRelay } from "../cli/inspect-relay.ts";

function frame(seq: number): InspectFrame {
  return {
    type: "@xstate.event",
    sessionId: "s",
    rootId: "r",
    createdAt: "0",
    id: null,
    _version: "0.7.2",
    seq,
    runSeq: seq,
    event: { type: "x", pad: "p".repeat(500) },
  };
}

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

describe("inspector sender", () => {
  it("keeps what is unacknowledged under its limit while the relay does not read, then delivers all in order", async () => {
    const relay = await startRelay({ pauseSenderMs: 1500 });
    const got: number[] = [];
    const receiver = new WebSocket(relay.url);
    receiver.on("message", (d) => got.push((JSON.parse(d.toString()) as InspectFrame).seq));
    await relay.clients(1);
    const highWater = 64 * 1024;
    const sender = new InspectSender(relay.url, { warn: () => {}, highWater });
    const total = 5000;
    const start = performance.now();
    for (let i = 1; i <= total; i++) sender.send([frame(i)]);
    // Queueing 2.5 MB of frames does not wait for the socket.
    expect(performance.now() - start).toBeLessThan(500);
    let most = 0;
    const watch = setInterval(() => {
      most = Math.max(most, sender.unacknowledgedBytes);
    }, 5);
    await new Promise((r) => setTimeout(r, 1000));
    // Paused: the first frame read, the rest waiting under the limit.
    expect(relay.received).toBeLessThan(total / 10);
    expect(sender.pending).toBeGreaterThan(total * 0.9);
    const r = await sender.finish(20_000);
    clearInterval(watch);
    expect(r).toEqual({ delivered: total, pending: 0, connected: true });
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(highWater + 1000);
    await until(() => got.length >= total, 5000);
    expect(got).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    receiver.close();
    await relay.close();
  }, 30_000);

  it("stops inspecting, with a warning, rather than let a fault reach the build", async () => {
    const relay = await startRelay();
    const warnings: string[] = [];
    const sender = new InspectSender(relay.url, { warn: (m) => warnings.push(m) });
    const listen = sender.listener();
    const bad = {
      type: "goal.waits",
      goal: "drv:/s/x.drv#normal",
      on: null,
      seq: 1,
      mono: 0,
      wall: 0,
    };
    expect(() => listen(bad as unknown as RunEvent)).not.toThrow();
    expect(() => listen({ ...bad, seq: 2 } as unknown as RunEvent)).not.toThrow();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^warning: stopped sending the run to the XState inspector: /);
    await sender.finish(1000);
    await relay.close();
  });

  it("takes ws:// and wss:// URLs, ws://127.0.0.1:8080 by default", () => {
    expect(parseInspectUrl(true)).toBe("ws://127.0.0.1:8080");
    expect(parseInspectUrl("ws://127.0.0.1:9000")).toBe("ws://127.0.0.1:9000");
    expect(() => parseInspectUrl("examples/x.json")).toThrow(
      "--inspect wants a WebSocket URL, as --inspect=ws://127.0.0.1:8080, not 'examples/x.json'",
    );
    expect(() => parseInspectUrl("http://127.0.0.1:1")).toThrow(/WebSocket URL/);
  });
});
