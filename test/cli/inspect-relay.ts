// A relay for inspector tests, bound to 127.0.0.1: each text message a client sends goes to every
// other open client, and a new client first gets the last 200 (as @statelyai/inspect's
// createInspectorServer, which listens on all interfaces). It can be made slow or unreliable
// towards the sender: stop reading its socket for a while, or cut its first connection.
import { WebSocket, WebSocketServer } from "ws";

export interface RelayOptions {
  /** Stop reading a sender's socket for this long after its first message. */
  pauseSenderMs?: number;
  /** Cut a sender's first connection (terminate, no close frame) after this many messages. */
  dropSenderAfter?: number;
}

export interface Relay {
  url: string;
  /** Connections made so far (receivers and senders). */
  connections: number;
  /** Messages received from senders, in the order read. */
  received: number;
  /** Resolves once `n` clients are connected at once. */
  clients(n: number): Promise<void>;
  close(): Promise<void>;
}

export async function startRelay(options: RelayOptions = {}): Promise<Relay> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
  const buffer: string[] = [];
  let dropped = false;
  const waiting: { n: number; resolve: () => void }[] = [];
  const relay: Relay = {
    url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`,
    connections: 0,
    received: 0,
    clients(n) {
      return new Promise((resolve) => {
        waiting.push({ n, resolve });
        check();
      });
    },
    close: () =>
      new Promise((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
  function check() {
    for (const w of [...waiting])
      if (wss.clients.size >= w.n) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve();
      }
  }
  wss.on("connection", (ws) => {
    relay.connections++;
    check();
    for (const msg of buffer) ws.send(msg);
    let count = 0;
    ws.on("message", (data) => {
      const msg = data.toString();
      relay.received++;
      count++;
      if (count === 1 && options.pauseSenderMs) {
        ws.pause();
        setTimeout(() => ws.resume(), options.pauseSenderMs);
      }
      if (!dropped && options.dropSenderAfter !== undefined && count >= options.dropSenderAfter) {
        dropped = true;
        ws.terminate();
        return;
      }
      buffer.push(msg);
      if (buffer.length > 200) buffer.shift();
      for (const client of wss.clients)
        if (client !== ws && client.readyState === WebSocket.OPEN) client.send(msg);
    });
  });
  return relay;
}
