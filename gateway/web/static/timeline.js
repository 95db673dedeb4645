// A run over time (GET /runs/{id}/timeline), charted with the vendored uPlot as Locust
// charts a load test: per team's service, throughput, latency p50/p99 and failures per
// time bucket, redrawn while the run goes. Each chart also lists its figures as a table.
// The intervals a service was down (paused by the breaker) are shaded bands on every chart,
// in the service's colour, and listed under the charts.

import { api, download } from "./api.js";
import { button, h, teamLabel } from "./dom.js";
import { act } from "./page.js";

// Bucket widths, seconds: the narrowest that keeps a run within MAX_POINTS buckets.
const WIDTHS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400];
const MAX_POINTS = 120;
const MAX_BUCKETS = 2000; // drawn at most, whatever the width asked for
const COLORS = ["#2f5fd0", "#d0612f", "#1c7c4a", "#9a3fd0", "#b42318", "#0f8a99", "#9a6700",
  "#5a6472"];
const CHARTS = [
  { key: "throughput", title: "Throughput, images/s", unit: "images/s", lines: [["", (b) => b.images_per_s, 0]] },
  { key: "latency", title: "Latency of ok answers, ms: p50 (solid) and p99 (dashed)", unit: "ms",
    lines: [[" p50", (b) => b.latency_ms.p50, null], [" p99", (b) => b.latency_ms.p99, null, [6, 4]]] },
  { key: "failures", title: "Failures per bucket (answers not ok)", unit: "failures",
    lines: [["", (b) => Object.values(b.failures).reduce((a, n) => a + n, 0), 0]] },
];

const seconds = (iso) => (iso ? Date.parse(/(Z|[+-]\d\d:?\d\d)$/i.test(iso) ? iso : `${iso}Z`) : NaN);

/** The bucket width for a run that has gone on this long. */
function bucketFor(run) {
  const from = seconds(run.started_at ?? run.created_at);
  const to = run.finished_at ? seconds(run.finished_at) : Date.now();
  const span = Math.max(0, (to - from) / 1000);
  return WIDTHS.find((w) => span / w <= MAX_POINTS) ?? WIDTHS.at(-1);
}

/** The down intervals of every service, in seconds from the run's start; `to` null:
 * down still. */
function downIntervals(timeline) {
  return timeline.services.flatMap((s, i) => (s.down ?? []).map((d) => ({
    label: teamLabel(s), color: COLORS[i % COLORS.length], from: d.t_s, to: d.end_t_s,
    back: d.came_back,
  })));
}

/** Every bucket start from the first answered (or down) to the last (the hub leaves empty
 * ones out): a down interval lies on the x axis even while nothing was answered. */
function bucketStarts(timeline) {
  const width = timeline.bucket_s;
  const starts = timeline.services.flatMap((s) => s.buckets.map((b) => b.t_s));
  for (const d of downIntervals(timeline)) {
    starts.push(Math.floor(d.from / width) * width);
    if (d.to != null) starts.push(Math.floor(d.to / width) * width);
  }
  const [first, last] = [Math.min(...starts), Math.max(...starts)];
  const count = Math.min(MAX_BUCKETS, Math.round((last - first) / timeline.bucket_s) + 1);
  return Array.from({ length: count }, (_, k) => first + k * timeline.bucket_s);
}

/** uPlot's aligned columns: the bucket starts, then one column per series. An empty
 * bucket had no answer: 0 images/s and 0 failures, but no latency (a gap). */
function columns(timeline, chart) {
  const xs = bucketStarts(timeline);
  const series = [];
  const data = [xs];
  timeline.services.forEach((s, i) => {
    const key = (t) => Math.round(t * 1000);
    const byT = new Map(s.buckets.map((b) => [key(b.t_s), b]));
    for (const [suffix, value, missing, dash] of chart.lines) {
      series.push({ label: `${teamLabel(s)}${suffix}`, stroke: COLORS[i % COLORS.length],
        width: 2, dash, spanGaps: false, points: { show: true, size: 5 } });
      data.push(xs.map((t) => (byT.has(key(t)) ? value(byT.get(key(t))) : missing)));
    }
  });
  return { series, data };
}

function figuresTable(chart, series, data) {
  const cell = (v) => (v == null ? "—" : Number.isInteger(v) ? `${v}` : v.toFixed(1));
  return h("table", { class: "figures" },
    h("thead", {}, h("tr", {}, h("th", {}, "t, s"), series.map((s) => h("th", {}, s.label)))),
    h("tbody", {}, data[0].map((t, row) => h("tr", {}, h("td", { class: "num" }, t),
      series.map((_, i) => h("td", { class: "num" }, cell(data[i + 1][row])))))));
}

/** A uPlot plugin shading each down interval `intervals()` gives across the plot; the
 * figure's data-down-bands says how many it drew. */
function downBands(intervals, figure) {
  const draw = (u) => {
    const { left, top, width, height } = u.bbox;
    const ctx = u.ctx;
    let drawn = 0;
    ctx.save();
    for (const d of intervals()) {
      const to = d.to ?? u.scales.x.max;
      const x0 = Math.min(left + width, Math.max(left, u.valToPos(d.from, "x", true)));
      const x1 = Math.min(left + width, u.valToPos(to, "x", true));
      if (!(x1 >= x0)) continue;
      const w = Math.max(2, x1 - x0); // an interval inside one bucket still shows
      ctx.globalAlpha = 0.18;
      ctx.fillStyle = d.color;
      ctx.fillRect(x0, top, w, height);
      ctx.globalAlpha = 0.9;
      ctx.strokeStyle = d.color;
      ctx.setLineDash([4, 3]);
      ctx.strokeRect(x0, top, w, height);
      drawn += 1;
    }
    ctx.restore();
    figure.dataset.downBands = drawn;
  };
  return { hooks: { draw: [draw] } };
}

/** One chart's figure: a uPlot canvas kept across refreshes (new data only, unless the
 * series changed), and its figures in a table under it. */
function chartFigure(chart) {
  const plotBox = h("div", { class: "plot" });
  const table = h("div");
  const figure = h("figure", { "data-chart": chart.key }, h("figcaption", {}, chart.title), plotBox,
    h("details", {}, h("summary", {}, "Figures"), table));
  let plot = null;
  let labels = "";
  let down = [];
  // The canvas has a fixed size: follow the page's width when the window changes.
  new ResizeObserver(() => {
    const width = Math.max(320, plotBox.clientWidth);
    if (plot && plotBox.clientWidth && width !== plot.width) plot.setSize({ width, height: 220 });
  }).observe(plotBox);
  const coverDown = (u, min, max) => {
    const lo = Math.min(min, ...down.map((d) => d.from));
    const hi = Math.max(max, ...down.map((d) => d.to ?? max));
    return [lo, hi > lo ? hi : lo + 1];
  };
  const draw = (timeline) => {
    const { series, data } = columns(timeline, chart);
    down = downIntervals(timeline);
    figure.dataset.points = data[0].length;
    table.replaceChildren(figuresTable(chart, series, data));
    // A new plot when the series change, or when the first down interval comes.
    const key = `${series.map((s) => s.label).join("\n")}\n${down.length > 0}`;
    if (plot && key === labels) return plot.setData(data);
    plot?.destroy();
    labels = key;
    plot = new window.uPlot({
      width: Math.max(320, plotBox.clientWidth || 520), height: 220,
      // With down intervals, the x axis reaches over each of them, answered or not.
      scales: { x: down.length ? { time: false, range: coverDown } : { time: false } },
      legend: { live: false },
      axes: [{ label: "seconds from the run's start" }, { label: chart.unit, size: 60 }],
      series: [{ label: "t, s" }, ...series],
      plugins: [downBands(() => down, figure)],
    }, data, plotBox);
    return undefined;
  };
  return { figure, draw };
}

export function timelineCard(runId) {
  const note = h("p", { class: "note" }, "Loading…");
  const figures = CHARTS.map(chartFigure);
  const csv = button("Timeline CSV", (event) => act(event.currentTarget,
    () => download(`/runs/${runId}/timeline?format=csv&bucket_s=${width}`, `run-${runId}-timeline.csv`)),
  "secondary");
  const downNote = h("ul", { class: "down-intervals", hidden: true });
  const charts = h("div", { class: "charts timeline", hidden: true }, figures.map((f) => f.figure),
    downNote);
  const caption = h("span", { class: "sub" });
  const card = h("section", { class: "card", id: "timeline" },
    h("h2", {}, "Over time ", caption), note, charts, h("p", { class: "actions" }, csv));
  let width = 10;
  const refresh = async (run) => {
    width = bucketFor(run);
    let timeline;
    try {
      timeline = await api(`/runs/${runId}/timeline?bucket_s=${width}`);
    } catch (err) {
      if (err.status === 401) throw err;
      // A team before an evaluation is published: the hub's reason, as a note.
      note.textContent = err.message;
      csv.hidden = true;
      charts.hidden = true;
      return;
    }
    csv.hidden = false;
    caption.textContent = `(buckets of ${width} s)`;
    const answered = timeline.services.some((s) => s.buckets.length || s.down?.length);
    const down = downIntervals(timeline);
    const secs = (t) => `${Math.round(t)} s`;
    downNote.hidden = !down.length;
    downNote.replaceChildren(...down.map((d) => h("li", { class: "down" },
      `${d.label} was down from ${secs(d.from)} `,
      d.to == null ? "and is still down" : `to ${secs(d.to)}${d.back ? "" : " (not back)"}`)));
    note.hidden = answered;
    note.textContent = "No answers yet.";
    charts.hidden = !answered;
    if (answered) for (const f of figures) f.draw(timeline);
  };
  return { card, refresh };
}
