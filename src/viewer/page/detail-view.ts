// The selected goal at the timeline's point: in the side panel what it is, its build log's tail,
// whom it waited for, its state history with times (later steps greyed) and the effects it ran;
// under the graph its machine's statechart with the active state highlighted.
import { drawChart, highlightChart } from "./chart-view.ts";
import { duration, esc, since, WORDS } from "./dom.ts";
import { goalAt, type TimeTable, timeAt } from "./goal-at.ts";
import type { ViewData } from "./view-data.ts";

export class DetailView {
  /** The chart drawn (redrawn only when another kind of goal is selected). */
  private chartKind: string | undefined;

  constructor(
    private readonly host: HTMLElement,
    /** The pane under the graph: a title and the chart. */
    private readonly chartPane: HTMLElement,
    private readonly onSelect: (goal: number) => void,
  ) {
    host.addEventListener("click", (ev) => {
      const a = (ev.target as Element).closest("[data-goto]");
      if (a) {
        ev.preventDefault();
        this.onSelect(Number(a.getAttribute("data-goto")));
      }
    });
  }

  show(data: ViewData, times: TimeTable, i: number, seq: number): void {
    if (i < 0) {
      this.host.innerHTML =
        '<p class="hint">Click a goal to see its states, effects, waits, build log and statechart.</p>';
      this.chartPane.hidden = true;
      this.chartKind = undefined;
      return;
    }
    const g = data.goals[i]!;
    const at = goalAt(data, g, seq);
    const t = (s: number) => since(timeAt(times, s));
    const str = (k: number) => data.strings[k]!;
    const link = (k: number) =>
      `<a href="#" data-goto="${k}">${esc(data.goals[k]?.name ?? String(k))}</a>`;
    const now = at.phase === "ended" ? WORDS[at.outcome!] : (at.state ?? WORDS[at.phase]);
    const rows: string[] = [];
    rows.push(`<h2 data-key="${esc(g.key)}">${esc(g.name)}</h2>`);
    rows.push(`<div class="key">${esc(g.key)}</div>`);
    rows.push(
      `<p class="now">at event ${seq}: <b class="phase-${at.phase}">${esc(now ?? "")}</b>${at.phase !== "ended" && at.phase !== "absent" ? ` (${WORDS[at.phase]})` : ""}</p>`,
    );
    if (g.end) {
      rows.push(
        `<p>ended ${t(g.end[0]!)}: <b>${esc(WORDS[str(g.end[1]!)] ?? str(g.end[1]!))}</b> (${esc(str(g.end[2]!))})${g.rootCause ? ' — <span class="rootcause">root cause</span>' : ""}${g.onCriticalPath ? ' — <span class="critpath">on the critical path</span>' : ""}</p>`,
      );
    }
    if (g.error) rows.push(`<p class="error">${esc(g.error)}</p>`);
    if (g.because?.length) rows.push(`<p>failed because of ${g.because.map(link).join(", ")}</p>`);
    if (g.targets?.length) rows.push(`<p>target: ${g.targets.map(esc).join(", ")}</p>`);

    if (g.log?.length) {
      rows.push(
        `<h3>Build log (last ${g.log.length === 1 ? "line" : `${g.log.length} lines`})</h3><pre class="log">${esc(g.log.join("\n"))}</pre>`,
      );
    } else if (g.bd.length > 0) {
      rows.push('<h3>Build log</h3><p class="hint">empty</p>');
    }
    if (g.wt.length > 0) {
      rows.push('<h3>Waited for</h3><ul class="waits">');
      for (const w of g.wt) {
        const [s, until, ...on] = w as [number, number, ...number[]];
        const span = until === 0 ? "still waiting" : `until ${t(until)}`;
        rows.push(
          `<li class="${s > seq ? "later" : ""}">${t(s)} ${span}: ${on.map(link).join(", ") || "(goals of an earlier run)"}</li>`,
        );
      }
      rows.push("</ul>");
    }

    rows.push('<h3>States</h3><table class="history">');
    for (let k = 0; k < g.tr.length; k += 2) {
      const s = g.tr[k]!;
      const cur = k + 2 >= g.tr.length || g.tr[k + 2]! > seq;
      const cls = s > seq ? "later" : cur ? "current" : "";
      rows.push(
        `<tr class="${cls}"><td>${t(s)}</td><td>#${s}</td><td>${esc(str(g.tr[k + 1]!))}</td></tr>`,
      );
    }
    rows.push("</table>");

    if (g.ef.length > 0) {
      rows.push('<h3>Effects</h3><table class="effects">');
      for (let k = 0; k < g.ef.length; k += 4) {
        const [s, e, name, ok] = [g.ef[k]!, g.ef[k + 1]!, g.ef[k + 2]!, g.ef[k + 3]!];
        const took =
          e === 0 || e > seq ? "running" : `${duration(timeAt(times, e) - timeAt(times, s))}`;
        const how = e === 0 || e > seq ? "" : ok === 1 ? "ok" : "failed";
        rows.push(
          `<tr class="${s > seq ? "later" : ""} ${how}"><td>${t(s)}</td><td>${esc(str(name))}</td><td>${took}</td><td>${how}</td></tr>`,
        );
      }
      rows.push("</table>");
    }

    this.host.innerHTML = rows.join("");
    const chartHost = this.chartPane.querySelector<HTMLElement>(".chart-host")!;
    this.chartPane.querySelector(".chart-title")!.innerHTML =
      `Statechart of ${esc(g.name)} (${g.kind} goal) at event ${seq}: <b>${esc(at.state ?? "not started")}</b> <span class="hint">— arrows are transitions (hover for their events); a failing effect leads to miscFailure (derivations) or failed (substitutions) from any state</span>`;
    this.chartPane.hidden = false;
    if (this.chartKind !== g.kind) drawChart(chartHost, data.charts[g.kind], at.state);
    else highlightChart(chartHost, at.state);
    this.chartKind = g.kind;
  }
}
