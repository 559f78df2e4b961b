// `npm run bench -- serve [--small 1000] [--small-kb 8] [--mb 128] [--queries 2000]
// [--batches 20] [--valid 200] [--builds 20] [--rounds 3] [--only a,b] [--profile DIR]
// [--resident]` (nixstate's sessions through bin/nixstate-serve-connect to one resident server): the
// `nix-store --serve` protocol served by `nixstate serve` and by real Nix 2.8's `nix-store --serve
// --write`, each on its own store holding the same content (serve-stores.ts), driven by the same
// clients: nixstate's ServeClient in this process over the server's stdio (one session per server
// and round; the clock runs after the handshake), and real Nix's `nix copy --from
// ssh://…?remote-program=…` through the ssh stand-in (whole command, server start included).
// Servers alternate within each round; medians; the ratio is nixstate's throughput over Nix's
// (≥ 1 is the target).
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { chmodSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { nixSystem } from "../../src/builder/build-settings.ts";
import { deleteTree } from "../../src/io/delete-tree.ts";
import { NIX_2_8_DEFAULT_BUILD_OPTIONS } from "../../src/protocol/serve/build-options.ts";
import { type ServeProcess, startServe } from "../../src/remote/serve-transport.ts";
import { basicDrv } from "../../test/remote/serve-fixtures.ts";
import { argsOf, median, requireNix, timed } from "./bench-process.ts";
import { startExportSession } from "./serve-export.ts";
import {
  addBigPath,
  addSmallPaths,
  type Server,
  type ServerStore,
  type ServeStores,
  setUpStores,
} from "./serve-stores.ts";

const SERVERS: Server[] = ["nixstate", "nix"];
const repo = resolve(fileURLToPath(import.meta.url), "../../..");

interface Context {
  stores: ServeStores;
  /** The server's store (paths, scratch store). */
  store: ServerStore;
  session: ServeProcess;
  round: number;
}

interface Measure {
  label: string;
  unit: "req/s" | "MB/s";
  /** Runs the work, timing only what counts; returns milliseconds and requests or bytes done. */
  run(c: Context): Promise<{ ms: number; amount: number }>;
}

async function clock(work: () => Promise<number>): Promise<{ ms: number; amount: number }> {
  const t0 = performance.now();
  const amount = await work();
  return { ms: performance.now() - t0, amount };
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const chunk of chunks) out.push(chunk);
  return out;
}

const bytes = (chunks: Buffer[]) => chunks.reduce((sum, c) => sum + c.length, 0);

function measures(o: Options): Measure[] {
  const system = nixSystem();
  const validDrv = (c: Context) => basicDrv(c.store.storeDir, "valid", "echo > $out", { system });
  return [
    {
      label: "QueryPathInfos, 1 path a request",
      unit: "req/s",
      run: ({ session, store }) =>
        clock(async () => {
          for (let i = 0; i < o.queries; i++) {
            await session.client.queryPathInfos([store.small[i % store.small.length]!]);
          }
          return o.queries;
        }),
    },
    {
      label: `QueryPathInfos, ${o.small} paths a request`,
      unit: "req/s",
      run: ({ session, store }) =>
        clock(async () => {
          for (let i = 0; i < o.batches; i++) {
            const infos = await session.client.queryPathInfos(store.small);
            if (infos.length !== store.small.length) throw new Error("paths missing on the server");
          }
          return o.batches;
        }),
    },
    {
      label: "BuildDerivation, output already valid",
      unit: "req/s",
      run: async (c) => {
        const d = validDrv(c);
        return clock(async () => {
          for (let i = 0; i < o.valid; i++) {
            const r = await c.session.client.buildDerivation(
              d.drvPath,
              d.drv,
              NIX_2_8_DEFAULT_BUILD_OPTIONS,
            );
            if (r.status !== "AlreadyValid")
              throw new Error(`valid build: ${r.status} ${r.errorMsg}`);
          }
          return o.valid;
        });
      },
    },
    {
      label: "BuildDerivation, `echo > $out` built",
      unit: "req/s",
      run: async ({ session, store, round }) => {
        const drvs = Array.from({ length: o.builds }, (_, i) =>
          basicDrv(store.storeDir, `fresh-${round}-${i}-${Date.now()}`, "echo > $out", {
            system,
          }),
        );
        return clock(async () => {
          for (const d of drvs) {
            const r = await session.client.buildDerivation(
              d.drvPath,
              d.drv,
              NIX_2_8_DEFAULT_BUILD_OPTIONS,
            );
            if (r.status !== "Built") throw new Error(`build: ${r.status} ${r.errorMsg}`);
          }
          return o.builds;
        });
      },
    },
    {
      label: `DumpStorePath, one ${o.mb} MB path`,
      unit: "MB/s",
      run: ({ session, store }) =>
        clock(async () => {
          let n = 0;
          for await (const chunk of session.client.dumpStorePath(store.big)) n += chunk.length;
          return n;
        }),
    },
    {
      label: `DumpStorePath, ${o.small} small paths`,
      unit: "MB/s",
      run: ({ session, store }) =>
        clock(async () => {
          let n = 0;
          for (const p of store.small) {
            for await (const chunk of session.client.dumpStorePath(p)) n += chunk.length;
          }
          return n;
        }),
    },
    {
      label: `ExportPaths, ${o.small} small paths`,
      unit: "MB/s",
      run: async ({ store }) => {
        const s = await startExportSession(store.argv, store.env, store.storeDir);
        try {
          return await clock(() => s.exportPaths(store.small));
        } finally {
          await s.close();
        }
      },
    },
    {
      label: `ImportPaths, ${o.small} new small paths`,
      unit: "MB/s",
      run: async ({ session, store, round }) => {
        const paths = addSmallPaths(
          store.scratch,
          o.small,
          o.smallKb,
          `${store.server}${round}${Date.now()}`,
        );
        const stream = await collect(store.scratch.exportPaths(paths));
        return clock(async () => {
          await session.client.importPaths(stream);
          return bytes(stream);
        });
      },
    },
    {
      label: `ImportPaths, a new ${o.mb} MB path`,
      unit: "MB/s",
      run: async ({ session, store, round }) => {
        const dir = mkdtempSync(join(tmpdir(), "nixstate-bench-big-"));
        const path = await addBigPath(
          store.scratch,
          dir,
          o.mb,
          `${store.server}${round}${Date.now()}`,
        );
        deleteTree(dir);
        const stream = await collect(store.scratch.exportPaths([path]));
        return clock(async () => {
          await session.client.importPaths(stream);
          return bytes(stream);
        });
      },
    },
    {
      label: `nix copy --from ssh://, one ${o.mb} MB path`,
      unit: "MB/s",
      run: ({ stores, store }) => nixCopyFrom(stores, store, [store.big], stores.bigNarBytes),
    },
    {
      label: `nix copy --from ssh://, ${o.small} small paths`,
      unit: "MB/s",
      run: ({ stores, store }) => nixCopyFrom(stores, store, store.small, stores.smallNarBytes),
    },
    // The same, nixstate's store served by a resident `nixstate serve --listen` (started once,
    // before the rounds) through bin/nixstate-serve-connect; Nix's column is nix-store as above.
    {
      label: `nix copy --from, ${o.mb} MB, resident server`,
      unit: "MB/s",
      run: ({ stores, store }) =>
        nixCopyFrom(stores, store, [store.big], stores.bigNarBytes, store.residentProgram),
    },
    {
      label: `nix copy --from, ${o.small} small, resident server`,
      unit: "MB/s",
      run: ({ stores, store }) =>
        nixCopyFrom(stores, store, store.small, stores.smallNarBytes, store.residentProgram),
    },
  ];
}

/** Real Nix as the client: the paths copied into a fresh chroot store, whole command timed. */
async function nixCopyFrom(
  stores: ServeStores,
  { server, remoteProgram }: ServerStore,
  paths: string[],
  narBytes: number,
  program = remoteProgram,
): Promise<{ ms: number; amount: number }> {
  const to = mkdtempSync(join(tmpdir(), "nixstate-bench-copy-"));
  try {
    const from = `ssh://buildbox?remote-program=${program}`;
    const args = ["copy", "--extra-experimental-features", "nix-command", "--no-check-sigs"];
    const run = await timed(
      "nix",
      [...args, "--from", from, "--to", `local?root=${to}`, ...paths],
      stores.nixClientEnv(server),
    );
    if (!run.ok) throw new Error(`nix copy from ${server} failed`);
    return { ms: run.ms, amount: narBytes };
  } finally {
    spawnSync("sh", ["-c", `chmod -R u+w '${to}'; rm -rf '${to}'`]);
  }
}

interface Options {
  small: number;
  smallKb: number;
  mb: number;
  queries: number;
  batches: number;
  valid: number;
  builds: number;
  rounds: number;
  only: string[] | undefined;
  profile: string | undefined;
  resident: boolean;
}

export async function benchServe(argv: string[]): Promise<void> {
  const arg = argsOf(argv);
  const o: Options = {
    small: Number(arg("--small", "1000")),
    smallKb: Number(arg("--small-kb", "8")),
    mb: Number(arg("--mb", "128")),
    queries: Number(arg("--queries", "2000")),
    batches: Number(arg("--batches", "20")),
    valid: Number(arg("--valid", "200")),
    builds: Number(arg("--builds", "20")),
    rounds: Number(arg("--rounds", "3")),
    only: argv.includes("--only") ? arg("--only", "").split(",") : undefined,
    profile: argv.includes("--profile") ? arg("--profile", "") : undefined,
    resident: argv.includes("--resident"),
  };
  requireNix("serve");
  const root = mkdtempSync(join(tmpdir(), "nixstate-bench-serve-"));
  chmodSync(root, 0o755);
  const all = measures(o);
  const chosen = o.only ? all.filter((m) => o.only!.some((w) => m.label.includes(w))) : all;
  let stores: ServeStores | undefined;
  let resident: ChildProcess | undefined;
  try {
    stores = await setUpStores(root, o);
    if (o.resident || chosen.some((m) => m.label.includes("resident"))) {
      const ns = stores.of("nixstate");
      resident = spawn(
        process.execPath,
        [
          join(repo, "bin/nixstate.js"),
          "serve",
          "--listen",
          ns.residentSocket!,
          "--write",
          ...ns.storeArgs!,
        ],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      await once(resident.stdout!, "data");
      // `--resident`: every nixstate session goes through the connect program to that server.
      if (o.resident) ns.argv = [ns.residentProgram!, "--serve", "--write"];
    }
    console.log(
      `serve benchmark: ${o.small} small paths (${(stores.smallNarBytes / 1e6).toFixed(1)} MB of NAR), one of ${(stores.bigNarBytes / 1e6).toFixed(0)} MB, ${o.rounds} rounds${o.resident ? "; nixstate: one resident serve --listen, each session through bin/nixstate-serve-connect" : ""}`,
    );
    const results = new Map<string, Record<Server, number[]>>(
      chosen.map((m) => [m.label, { nixstate: [], nix: [] }]),
    );
    const start = async (server: Server) => {
      const { argv: cmd, env, storeDir } = stores!.of(server);
      return startServe(cmd, { storeDir, env, server });
    };
    // Warm up: the page cache, each server's code paths, and the already-valid output.
    for (const server of SERVERS) {
      const session = await start(server);
      const { storeDir, big, small } = stores.of(server);
      const d = basicDrv(storeDir, "valid", "echo > $out", { system: nixSystem() });
      await session.client.buildDerivation(d.drvPath, d.drv, NIX_2_8_DEFAULT_BUILD_OPTIONS);
      for (const p of [big, ...small]) await collect(session.client.dumpStorePath(p));
      await session.client.queryPathInfos(small);
      await session.close();
    }
    for (let round = 0; round < o.rounds; round++) {
      const sessions = { nixstate: await start("nixstate"), nix: await start("nix") };
      for (const [i, m] of chosen.entries()) {
        const order = (round + i) % 2 === 0 ? SERVERS : [...SERVERS].reverse();
        for (const server of order) {
          const { ms, amount } = await m.run({
            stores,
            store: stores.of(server),
            session: sessions[server],
            round,
          });
          const rate = m.unit === "MB/s" ? amount / 1e6 / (ms / 1000) : amount / (ms / 1000);
          results.get(m.label)![server].push(rate);
        }
      }
      for (const s of SERVERS) {
        const exit = await sessions[s].close();
        if (exit.code !== 0)
          throw new Error(`${s} serve exited with ${exit.code}: ${sessions[s].stderr()}`);
      }
    }
    console.log(
      `${"measure".padEnd(44)} ${"nixstate".padStart(12)} ${"nix".padStart(12)}  nixstate/nix`,
    );
    for (const m of chosen) {
      const r = results.get(m.label)!;
      const [a, b] = [median(r.nixstate), median(r.nix)];
      const f = (x: number) => `${x.toFixed(x >= 100 ? 0 : 1)} ${m.unit}`;
      console.log(
        `${m.label.padEnd(44)} ${f(a).padStart(12)} ${f(b).padStart(12)}  ${(a / b).toFixed(2)}  (rounds: ${r.nixstate.map((x) => x.toFixed(0)).join(" ")} | ${r.nix.map((x) => x.toFixed(0)).join(" ")})`,
      );
    }
  } finally {
    resident?.kill("SIGTERM");
    if (resident && resident.exitCode === null) await once(resident, "exit");
    stores?.close();
    spawnSync("sh", ["-c", `chmod -R u+w '${root}' 2>/dev/null`]);
    deleteTree(root);
  }
}
