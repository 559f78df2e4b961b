// Watch a nixstate build in the terminal through the XState inspection protocol: a relay on
// 127.0.0.1 that passes each frame to every other client (as @statelyai/inspect's
// createInspectorServer does, which listens on all interfaces), and a receiver made with
// @statelyai/inspect's createWebSocketReceiver that prints a line per frame.
//
//   node examples/inspect/watch.mjs [PORT]          (default 8080)
//   nixstate build -k examples/broken/poster.json --inspect=ws://127.0.0.1:PORT
import { createWebSocketReceiver } from "@statelyai/inspect";
import { WebSocket, WebSocketServer } from "ws";

const port = Number(process.argv[2] ?? 8080);
const wss = new WebSocketServer({ host: "127.0.0.1", port });
wss.on("connection", (ws) => {
  ws.on("message", (data) => {
    const msg = data.toString();
    for (const client of wss.clients)
      if (client !== ws && client.readyState === WebSocket.OPEN) client.send(msg);
  });
});
await new Promise((resolve) => wss.once("listening", resolve));
const { port: listening } = wss.address();

const names = new Map();
const nameOf = (id) => names.get(id) ?? id ?? "?";
/** A state value as a dotted path: `{ inputsRealised: "waiting" }` → `inputsRealised.waiting`. */
const statePath = (v) =>
  v === null || typeof v !== "object"
    ? String(v)
    : Object.entries(v)
        .map(([k, s]) => `${k}.${statePath(s)}`)
        .join(",");
let lastSeq = 0;

const receiverConnected = new Promise((resolve) => wss.once("connection", resolve));
createWebSocketReceiver({ server: `ws://127.0.0.1:${listening}` }).subscribe((f) => {
  // A sender that reconnects sends again what it could not confirm: `seq` tells (a replay of
  // the run starts again at 1).
  if (f.seq <= lastSeq && f.seq !== 1) return;
  lastSeq = f.seq;
  if (f.type === "@xstate.actor") {
    names.set(f.sessionId, f.name);
    console.log(`+ ${f.name}${f.parentId ? ` (asked by ${nameOf(f.parentId)})` : ""}`);
  } else if (f.type === "@xstate.snapshot") {
    const s = f.snapshot;
    console.log(
      `${nameOf(f.sessionId)}: ${statePath(s.value)}${s.status === "active" ? "" : ` [${s.status}]`}`,
    );
  } else if (f.type === "@xstate.event") {
    console.log(`${nameOf(f.sourceId)} -> ${nameOf(f.sessionId)}: ${f.event.type}`);
  }
});
// Frames reach only the clients connected when they come: say so once the receiver is one.
await receiverConnected;
console.log(`listening on ws://127.0.0.1:${listening}`);
