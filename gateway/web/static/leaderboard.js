// The leaderboard table and its bar charts. Honest about what a row stands on: images
// scored of the total, and "provisional" until the service has passed or failed.

import { badge, h, METRIC_LABEL, METRICS, ms, pct, perSecond, short, STOPPED_AT_DEADLINE, svg,
  team, teamLabel } from "./dom.js";

const FINAL = new Set(["passed", "failed"]);

/** Images in the row's total: the hub's `images_total` when it sends one, else the run's
 * count for that service. */
function imagesTotal(run, row) {
  if (row.images_total != null) return row.images_total;
  return run.services.find((s) => s.service_guid === row.service_guid)?.total ?? null;
}
const provisional = (row) => row.provisional ?? !FINAL.has(row.status);

function statusCell(row) {
  return [badge(row.status),
    provisional(row) ? h("span", { class: "badge provisional" }, "provisional") : null,
    row.resent ? h("span", { class: "badge resent", title: "images the organizer had sent again" },
      `re-sent ${row.resent}`) : null];
}

export function leaderboard(run, rows) {
  if (!rows.length) return [h("p", { class: "note" }, "No rows yet.")];
  const shown = ([key]) => key === run.metric || rows.some((r) => r[key] != null);
  const images = (r) => {
    const total = imagesTotal(run, r);
    return total == null ? `${r.images}` : `${r.images} / ${total}`;
  };
  const columns = [
    ["rank", "#", (r) => r.rank],
    ["team", "Team", team],
    ["status", "Status", statusCell],
    ["images", "Images scored", images],
    ...METRICS.filter(shown).map(([key, label]) => [key, label, (r) => pct(r[key])]),
    ["p50", "p50 ms", (r) => ms(r.latency_ms.p50)],
    ["p99", "p99 ms", (r) => ms(r.latency_ms.p99)],
    ["images_per_s", "img/s", (r) => perSecond(r.images_per_s)],
  ];
  const cls = (key) => {
    const names = [key === run.metric && "primary", !["team", "status"].includes(key) && "num"];
    return names.filter(Boolean).join(" ") || null;
  };
  const cells = (r) => columns.map(([key, , cell]) =>
    h("td", { "data-col": key, class: cls(key) }, cell(r)));
  const table = h("table", { id: "ranking" },
    h("thead", {}, h("tr", {}, columns.map(([key, label]) => h("th", { class: cls(key) }, label)))),
    h("tbody", {}, rows.map((r) => h("tr", {
      "data-service": r.service_guid, class: provisional(r) ? "provisional" : null,
    }, cells(r)))));
  const primary = METRIC_LABEL[run.metric] ?? run.metric;
  const anyProvisional = rows.some(provisional);
  const uncertainty = rows[0]?.timing_uncertainty_ms;
  const parts = [
    table,
    run.stopped_at_deadline ? h("p", { class: "note", id: "board-deadline" },
      `The run ${STOPPED_AT_DEADLINE}: images not answered by then count as wrong (missed).`) : null,
    rows.some((r) => r.resent) ? h("p", { class: "note", id: "board-resent" },
      "Re-sent: the organizer had those images of the service sent again; their earlier results are kept as history.") : null,
    anyProvisional ? h("p", { class: "note" },
      "Provisional rows may still change: their service has not passed or failed yet.") : null,
    h("p", { class: "note", id: "ranking-rule" }, rankingRule(rows[0], uncertainty)),
    uncertainty == null ? null : h("p", { class: "note", id: "timing" },
      `Latencies are exact to about ${ms(uncertainty)} ms (how late the hub's event loop ran `
      + "while sending): a p50 smaller than that is still measured, but two p50s closer "
      + "than that are not told apart."),
    h("div", { class: "charts" },
      h("figure", {},
        h("figcaption", {}, `${primary} (primary metric)`),
        barChart(rows, (r) => [[r[run.metric] ?? 0, "bar"]], 1, (r) => pct(r[run.metric]))),
      h("figure", {},
        h("figcaption", {}, "Latency, ms: p50 (dark) and p99 (light)"),
        barChart(
          rows,
          (r) => [[r.latency_ms.p99 ?? 0, "bar light"], [r.latency_ms.p50 ?? 0, "bar"]],
          Math.max(...rows.map((r) => r.latency_ms.p99 ?? r.latency_ms.p50 ?? 0)),
          (r) => `${ms(r.latency_ms.p50)} / ${ms(r.latency_ms.p99)}`,
        )),
    ),
  ];
  return parts.filter(Boolean);
}

/** The ranking metric and the tie-breaker, as the hub ranked (gateway/scoring/leaderboard.py;
 * the CLIs print the same sentence from gateway/scoring/display.py). */
function rankingRule(row, uncertainty) {
  const metric = (METRIC_LABEL[row.ranked_by] ?? row.ranked_by ?? "").replace(/^Top/, "top")
    .replace(/^Cov/, "coverage");
  if (uncertainty == null) {
    return `Ranked by ${metric}; an equal ${metric} is a shared rank (no timing uncertainty `
      + "recorded, so latency breaks no tie).";
  }
  return `Ranked by ${metric}; an equal ${metric} is ordered by p50 latency only where the `
    + `p50s differ by more than ${ms(uncertainty)} ms (the timing uncertainty), else the rank `
    + "is shared.";
}

/** A horizontal bar chart, one row per team's service (labelled provider / service);
 * bars(row) gives [value, class] pairs drawn from 0 in order (so the longest goes first),
 * text(row) the figure shown at the end. */
function barChart(rows, bars, max, text) {
  const [width, labelWidth, rowHeight] = [560, 230, 28];
  const plotWidth = width - labelWidth - 100;
  const viewBox = `0 0 ${width} ${rows.length * rowHeight + 8}`;
  const chart = svg("svg", { class: "chart", viewBox, role: "img" });
  rows.forEach((r, i) => {
    const y = 4 + i * rowHeight;
    const middle = y + rowHeight / 2;
    const name = `${r.rank}. ${teamLabel(r)}`;
    const group = svg("g", {},
      svg("title", {}, `${name}: ${text(r)}${provisional(r) ? " (provisional)" : ""}`),
      svg("text", { x: labelWidth - 8, y: middle, class: "label" }, short(name, 34)));
    for (const [value, cls] of bars(r)) {
      const length = max > 0 ? (plotWidth * Math.max(0, Math.min(value, max))) / max : 0;
      const bar = { x: labelWidth, y: y + 5, width: length, height: rowHeight - 10, rx: 3 };
      group.append(svg("rect", { ...bar, class: cls }));
    }
    const end = labelWidth + plotWidth + 8;
    group.append(svg("text", { x: end, y: middle, class: "value" }, text(r)));
    chart.append(group);
  });
  return chart;
}
