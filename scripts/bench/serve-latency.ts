// `npm run bench -- serve-latency [--requests 5000] [--rounds 3]`: the round trip of one small
// serve request (QueryPathInfos of one valid path) with a client that does nothing else: it
// writes the request's bytes and counts the reply's, so what is timed is the server and the
// pipes. Three servers, alternating: `nixstate serve`, `nix-store --serve`, and the floor, a
// Node process answering each request with the same bytes from memory (scripts/bench/
// serve-floor.mjs): what any Node server pays for its wake-ups and writes. (`bench -- serve`
// times the same request through nixstate's full client, which adds its own decoding.)
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { argsOf, median, nixEnv, requireNix } from "./bench-process.ts";

const repo = resolve(fileURLToPath(import.meta.url), "../../..");

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(n, 0);
  return b;
}

function wireString(s: string): Buffer {
  const bytes = Buffer.from(s);
  return Buffer.concat([u64(bytes.length), bytes, Buffer.alloc((8 - (bytes.length % 8)) % 8)]);
}

const HELLO = Buffer.concat([u64(0x390c9deb), u64(0x207)]);
const queryPathInfos = (path: string) => Buffer.concat([u64(2), u64(1), wireString(path)]);

/** Requests a second, after the handshake and a first request whose reply gives its length. */
function roundTrips(server: ChildProcess, request: Buffer, requests: number): Promise<number> {
  return new Promise((done, fail) => {
    let pending = 0;
    let replyLength = 0;
    let sent = 0;
    let t0 = 0;
    let stage: "hello" | "first" | "run" = "hello";
    server.on("error", fail);
    server.on("exit", (code) => {
      if (stage !== "run" || sent < requests) fail(new Error(`server exited (${code}) early`));
    });
    server.stdout!.on("data", (data: Buffer) => {
      pending += data.length;
      if (stage === "hello") {
        if (pending < 16) return;
        pending -= 16;
        stage = "first";
        server.stdin!.write(request);
        return;
      }
      if (stage === "first") {
        // One reply arrives in one piece here (a few hundred bytes in one write).
        replyLength = pending;
        pending = 0;
        stage = "run";
        t0 = performance.now();
        sent = 1;
        server.stdin!.write(request);
        return;
      }
      while (pending >= replyLength) {
        pending -= replyLength;
        if (sent < requests) {
          sent++;
          server.stdin!.write(request);
        } else {
          done(requests / ((performance.now() - t0) / 1000));
          server.stdin!.end();
          return;
        }
      }
    });
    server.stdin!.write(HELLO);
  });
}

export async function benchServeLatency(argv: string[]): Promise<void> {
  const arg = argsOf(argv);
  const requests = Number(arg("--requests", "5000"));
  const rounds = Number(arg("--rounds", "3"));
  requireNix("serve-latency");
  const root = mkdtempSync(join(tmpdir(), "nixstate-bench-latency-"));
  try {
    const file = join(root, "hello.txt");
    writeFileSync(file, "hello\n");
    const env = nixEnv(join(root, "nix"));
    const nixPath = spawnSync("nix-store", ["--add", file], { env }).stdout.toString().trim();
    const state = join(root, "ns-state");
    const store = join(root, "ns-store");
    const bin = join(repo, "bin/nixstate.js");
    const dirs = ["--state-dir", state, "--store-dir", store];
    const added = spawnSync(process.execPath, [bin, "store", "add", ...dirs, file]);
    const ourPath = added.stdout.toString().trim();
    if (!nixPath || !ourPath) throw new Error(`adding the path failed: ${added.stderr}`);
    // The floor answers with nixstate's reply, recorded once.
    const reply = join(root, "reply.bin");
    const request = queryPathInfos(ourPath);
    const recorded = spawnSync(process.execPath, [bin, "serve", ...dirs], {
      input: Buffer.concat([HELLO, request]),
    });
    writeFileSync(reply, recorded.stdout.subarray(16));
    const servers = {
      nixstate: () =>
        spawn(process.execPath, [bin, "serve", ...dirs], { stdio: ["pipe", "pipe", "inherit"] }),
      nix: () => spawn("nix-store", ["--serve"], { env, stdio: ["pipe", "pipe", "inherit"] }),
      floor: () =>
        spawn(
          process.execPath,
          [join(repo, "scripts/bench/serve-floor.mjs"), reply, String(request.length)],
          { stdio: ["pipe", "pipe", "inherit"] },
        ),
    };
    const requestOf = { nixstate: ourPath, nix: nixPath, floor: ourPath };
    const names = Object.keys(servers) as (keyof typeof servers)[];
    const rates: Record<string, number[]> = { nixstate: [], nix: [], floor: [] };
    console.log(
      `serve-latency benchmark: QueryPathInfos of 1 path, ${requests} requests a round, ${rounds} rounds`,
    );
    for (let r = 0; r < rounds; r++) {
      for (const name of [...names.slice(r % 3), ...names.slice(0, r % 3)]) {
        const rate = await roundTrips(servers[name](), queryPathInfos(requestOf[name]), requests);
        rates[name]!.push(rate);
      }
    }
    const [ns, nix, floor] = [median(rates.nixstate!), median(rates.nix!), median(rates.floor!)];
    const f = (x: number) => `${x.toFixed(0)} req/s`;
    console.log(
      `nixstate ${f(ns)} | Node floor ${f(floor)} | nix ${f(nix)} | nixstate/nix ${(ns / nix).toFixed(2)}, floor/nix ${(floor / nix).toFixed(2)}, nixstate/floor ${(ns / floor).toFixed(2)}`,
    );
    console.log(
      `  rounds: nixstate ${rates.nixstate!.map((x) => x.toFixed(0)).join(" ")} | floor ${rates.floor!.map((x) => x.toFixed(0)).join(" ")} | nix ${rates.nix!.map((x) => x.toFixed(0)).join(" ")}`,
    );
  } finally {
    deleteTree(root);
  }
}
