// The viewer page's styles. Phase colours follow `nixstate graph`'s outcome fills where they
// overlap (built green, failed red, dependency failed orange).
export const PAGE_CSS = `
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #212121; background: #fff; }
body { display: flex; flex-direction: column; }
header { padding: 8px 14px 6px; border-bottom: 1px solid #e0e0e0; background: #fafafa; }
h1 { font-size: 16px; margin: 0 0 4px; font-weight: 600; }
.runstate { font-weight: 500; padding: 1px 6px; border-radius: 8px; background: #eceff1; font-size: 12px; }
.runstate.running { background: #bbdefb; }
.runstate.interrupted { background: #ffe0b2; }
.targets { font-weight: 400; color: #546e7a; font-size: 13px; }
.live { color: #d32f2f; font-size: 12px; font-weight: 600; }
#counts { display: flex; gap: 8px; margin: 4px 0; }
.count { padding: 2px 8px; border-radius: 10px; font-weight: 600; font-size: 12px; border: 1px solid #cfd8dc; }
.count.done { background: #c8e6c9; }
.count.running { background: #bbdefb; }
.count.waiting { background: #fff59d; }
.count.failed { background: #ef9a9a; }
.count.absent { background: #fff; color: #78909c; }
#legend { display: flex; flex-wrap: wrap; gap: 10px; font-size: 12px; color: #455a64; }
.key-item { display: inline-flex; align-items: center; gap: 4px; }
.swatch { display: inline-block; width: 14px; height: 10px; border-radius: 2px; border: 1px solid #90a4ae; }
main { flex: 1; display: flex; min-height: 0; }
#left { flex: 1; display: flex; flex-direction: column; min-width: 0; }
#graph-host { flex: 1; position: relative; min-height: 0; background: #fcfcfc; }
#chart-pane { height: 46%; border-top: 1px solid #e0e0e0; display: flex; flex-direction: column; }
#chart-pane[hidden] { display: none; }
.chart-title { padding: 4px 14px; font-size: 12px; color: #37474f; border-bottom: 1px solid #eceff1; }
.chart-title .hint { color: #78909c; }
#graph { width: 100%; height: 100%; display: block; cursor: grab; user-select: none; }
aside#detail { width: 470px; overflow: auto; border-left: 1px solid #e0e0e0; padding: 10px 14px; }
footer#timeline { display: flex; align-items: center; gap: 8px; padding: 8px 14px; border-top: 1px solid #e0e0e0; background: #fafafa; }
footer button { font-size: 13px; min-width: 32px; padding: 3px 6px; border: 1px solid #b0bec5; background: #fff; border-radius: 4px; cursor: pointer; }
#seq { flex: 1; }
#pos { font-variant-numeric: tabular-nums; min-width: 220px; color: #37474f; }
.tip { position: absolute; display: none; pointer-events: none; background: #263238; color: #fff; padding: 4px 8px; border-radius: 4px; font-size: 12px; max-width: 360px; z-index: 2; }

.goal > rect { fill: #fff; stroke: #78909c; stroke-width: 1; }
.goal { cursor: pointer; }
.goal text { font-size: 12px; fill: #212121; pointer-events: none; }
.goal text.name { font-weight: 600; }
.goal text.sub { font-size: 11px; fill: #37474f; }
.goal.p-absent > rect, .swatch.p-absent { fill: #fff; background: #fff; stroke-dasharray: 3 2; opacity: 0.55; }
.goal.p-absent text { fill: #90a4ae; }
.goal.p-running > rect, .swatch.p-running { fill: #bbdefb; background: #bbdefb; }
.goal.p-building > rect, .swatch.p-building { fill: #64b5f6; background: #64b5f6; }
.goal.p-waiting > rect, .swatch.p-waiting { fill: #fff59d; background: #fff59d; }
.goal.o-built > rect, .swatch.o-built { fill: #a5d6a7; background: #a5d6a7; }
.goal.o-substituted > rect, .swatch.o-substituted { fill: #80cbc4; background: #80cbc4; }
.goal.o-alreadyValid > rect, .goal.o-validUnderLock > rect, .swatch.o-alreadyValid { fill: #dcedc8; background: #dcedc8; }
.goal.o-failed > rect, .swatch.o-failed { fill: #ef5350; background: #ef5350; }
.goal.o-failed text { fill: #fff; }
.goal.o-cachedFailure > rect { fill: #ef9a9a; }
.goal.o-dependencyFailed > rect, .swatch.o-dependencyFailed { fill: #ffcc80; background: #ffcc80; }
.goal.o-cancelled > rect, .goal.o-noSubstituter > rect, .swatch.o-cancelled { fill: #cfd8dc; background: #cfd8dc; }
.goal.crit > rect { stroke: #0d47a1; stroke-width: 2.5; }
.swatch.crit { border: 2px solid #0d47a1; background: #fff; }
.goal.root > rect { stroke: #b71c1c; stroke-width: 3.5; }
.swatch.root { border: 2px solid #b71c1c; background: #ef5350; }
.goal.selected > rect { stroke: #000; stroke-width: 3; filter: drop-shadow(0 0 3px #0009); }
.edge { fill: none; stroke: #90a4ae; stroke-width: 1.3; }
.edge.asked { stroke-dasharray: 5 3; }
.edge.many { stroke: #b0bec5; stroke-width: 0.4; opacity: 0.5; }
.edge.crit { stroke: #0d47a1; stroke-width: 2.5; }
.edge.sel { stroke: #000; stroke-width: 1.5; }
text.layer { font-size: 11px; fill: #78909c; }

#detail h2 { font-size: 16px; margin: 0; word-break: break-all; }
#detail h3 { font-size: 13px; margin: 14px 0 4px; color: #37474f; border-bottom: 1px solid #eceff1; }
#detail .key { font-family: ui-monospace, monospace; font-size: 11px; color: #78909c; word-break: break-all; }
#detail table { border-collapse: collapse; width: 100%; font-size: 12px; }
#detail td { padding: 1px 6px 1px 0; vertical-align: top; white-space: nowrap; }
#detail td:last-child { white-space: normal; }
#detail tr.later, #detail li.later { color: #b0bec5; }
#detail tr.current { font-weight: 700; background: #e3f2fd; }
#detail tr.failed td:last-child { color: #c62828; }
#detail .error { color: #b71c1c; }
#detail .rootcause { color: #b71c1c; font-weight: 700; }
#detail .critpath { color: #0d47a1; font-weight: 700; }
#detail .hint { color: #78909c; }
#detail ul { margin: 0; padding-left: 18px; }
pre.log { background: #263238; color: #eceff1; padding: 8px; border-radius: 4px; font-size: 11px; white-space: pre-wrap; word-break: break-all; max-height: 240px; overflow: auto; }
.chart-host { overflow: auto; flex: 1; min-height: 0; background: #fff; }
svg.chart { display: block; font-size: 11px; }
.state > rect { fill: #fff; stroke: #90a4ae; }
.state.compound > rect { fill: #f5f7f8; stroke: #cfd8dc; }
.state.compound text { fill: #78909c; font-weight: 600; }
.state .inner { fill: none; }
.state.final > rect { stroke: #78909c; }
.state.active > rect { fill: #1e88e5; stroke: #0d47a1; stroke-width: 2; }
.state.active text { fill: #fff; font-weight: 700; }
.state.active-parent > rect { fill: #e3f2fd; stroke: #64b5f6; }
.transition { fill: none; stroke: #b0bec5; stroke-width: 1; }
`;
