// The viewer page as one HTML file: its script (src/viewer/page/, bundled by esbuild when first
// asked for in a process, so a fresh checkout needs no build step), its styles and the run's data
// inlined. It makes no network request; a live page only talks to the server that served it.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { esbuild } from "../io/on-demand.ts";
import type { ViewData } from "./page/view-data.ts";
import { PAGE_CSS } from "./page-css.ts";

export class ViewerBundleError extends Error {
  override name = "ViewerBundleError";
}

/** The package's root: the folder above src/ (or dist/, when running the bundled CLI). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "src/viewer/page/main.ts")))
      return dir;
    const up = dirname(dir);
    if (up === dir)
      throw new ViewerBundleError(
        "cannot find the viewer's page sources (src/viewer/page/main.ts) above this nixstate; reinstall nixstate",
      );
    dir = up;
  }
}

let bundled: Promise<string> | undefined;

/** The page's script, bundled once per process. */
export function pageScript(): Promise<string> {
  bundled ??= (async () => {
    const root = packageRoot();
    const { build } = esbuild();
    const r = await build({
      entryPoints: [join(root, "src/viewer/page/main.ts")],
      tsconfig: join(root, "src/viewer/page/tsconfig.json"),
      bundle: true,
      write: false,
      format: "iife",
      target: "es2022",
      minify: true,
      legalComments: "none",
      logLevel: "silent",
    });
    return r.outputFiles[0]!.text;
  })();
  return bundled;
}

/** JSON or script text safe inside a <script> element. */
const inScript = (s: string) => s.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");

const LEGEND: [string, string][] = [
  ["p-running", "running"],
  ["p-building", "building"],
  ["p-waiting", "waiting"],
  ["o-built", "built"],
  ["o-substituted", "substituted"],
  ["o-alreadyValid", "already valid"],
  ["o-failed", "failed"],
  ["o-dependencyFailed", "dependency failed"],
  ["o-cancelled", "cancelled"],
  ["p-absent", "not started"],
];

export async function pageHtml(data: ViewData): Promise<string> {
  const script = await pageScript();
  const legend = LEGEND.map(
    ([cls, words]) => `<span class="key-item"><i class="swatch ${cls}"></i>${words}</span>`,
  ).join("");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nixstate run ${data.run.id}</title>
<style>${PAGE_CSS}</style>
</head>
<body>
<header>
  <h1>nixstate <span id="run"></span> <span id="live" class="live" hidden>● live</span></h1>
  <div id="counts"></div>
  <div id="legend">${legend}<span class="key-item"><i class="swatch crit"></i>critical path</span><span class="key-item"><i class="swatch root"></i>root cause</span></div>
</header>
<main>
  <div id="left">
    <section id="graph-host"></section>
    <section id="chart-pane" hidden><div class="chart-title"></div><div class="chart-host"></div></section>
  </div>
  <aside id="detail"></aside>
</main>
<footer id="timeline">
  <button id="prev" title="previous event (←)">◀</button>
  <button id="play" title="play the run">▶</button>
  <button id="next" title="next event (→)">▶|</button>
  <input id="seq" type="range" min="0" max="${data.lastSeq}" value="${data.lastSeq}" aria-label="timeline">
  <button id="end" title="the end">▶▶|</button>
  <span id="pos"></span>
</footer>
<script id="nixstate-view-data" type="application/json">${inScript(JSON.stringify(data))}</script>
<script>${inScript(script)}</script>
</body>
</html>
`;
}
