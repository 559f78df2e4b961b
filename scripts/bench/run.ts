// `npm run bench -- <name> [options]`: one benchmark per module in this folder.
import { benchDag } from "./dag.ts";
import { benchMemory } from "./memory.ts";
import { benchNar } from "./nar.ts";
import { benchRecord } from "./record.ts";
import { benchRemote } from "./remote.ts";
import { benchServe } from "./serve.ts";
import { benchServeLatency } from "./serve-latency.ts";
import { benchStartup } from "./startup.ts";
import { benchView } from "./view.ts";

const [name, ...rest] = process.argv.slice(2);
const benches: Record<string, (argv: string[]) => Promise<void>> = {
  dag: benchDag,
  memory: benchMemory,
  nar: benchNar,
  record: benchRecord,
  remote: benchRemote,
  startup: benchStartup,
  view: benchView,
  serve: benchServe,
  "serve-latency": benchServeLatency,
};
const bench = benches[name ?? ""];
if (!bench) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join("|")}> [options]`);
  process.exit(1);
}
await bench(rest);
