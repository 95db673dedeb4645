// Building the page, text only: data enters as text nodes and attribute values, never as
// markup (team and service names are user input). And the number formats, shared with
// the CLI: percentages (x * 100).toFixed(1) + "%", latency in ms with toFixed(1).

const SVG_NS = "http://www.w3.org/2000/svg";

function build(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else if (value != null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child != null && child !== false) node.append(child instanceof Node ? child : `${child}`);
  }
  return node;
}
export const h = (tag, attrs = {}, ...children) =>
  build(document.createElement(tag), attrs, children);
export const svg = (tag, attrs = {}, ...children) =>
  build(document.createElementNS(SVG_NS, tag), attrs, children);

// ---- numbers (the CLI prints the same figures the same way) ----------------------------

export const pct = (v) => (v == null ? "—" : `${(v * 100).toFixed(1)}%`);
export const ms = (v) => (v == null ? "—" : v.toFixed(1));
export const perSecond = (v) => (v == null ? "—" : v.toFixed(1));

/** A date-time from the API (UTC, maybe without a zone) in the reader's local time. */
export function when(iso) {
  if (!iso) return "—";
  const date = new Date(/(Z|[+-]\d\d:?\d\d)$/i.test(iso) ? iso : `${iso}Z`);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** A wire time as a <time> in local time; its title is the UTC ISO the hub sent. */
export const localTime = (iso) => h("time", { datetime: iso, title: iso }, when(iso));

export const STOPPED_AT_DEADLINE = "stopped at its deadline";

/** The run's evaluation window as one line, or null without one to say: "starts at" while
 * queued for a later start, "deadline" while it may still go, a badge once it stopped. */
export function runWindow(run) {
  if (run.stopped_at_deadline) {
    return h("span", { class: "window" }, h("span", { class: "badge deadline" }, STOPPED_AT_DEADLINE));
  }
  const parts = [];
  const later = run.start_at && new Date(run.start_at) > new Date();
  if (run.state === "queued" && later) parts.push("starts at ", localTime(run.start_at));
  if (ACTIVE.has(run.state) && run.deadline) {
    parts.push(parts.length ? " · deadline " : "deadline ", localTime(run.deadline));
  }
  return parts.length ? h("span", { class: "window sub" }, parts) : null;
}

export function eta(seconds) {
  if (seconds == null) return "—";
  const s = Math.round(seconds);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

// ---- small pieces -------------------------------------------------------------------------

export const METRICS = [["top1", "Top-1"], ["top5", "Top-5"], ["coverage_at_95", "Cov@95"],
  ["coverage_at_99", "Cov@99"], ["micro_ap", "µAP"]];
export const METRIC_LABEL = Object.fromEntries(METRICS);
export const ACTIVE = new Set(["queued", "running"]);

export const short = (text, n = 30) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);
export const sum = (rows, key) => rows.reduce((total, row) => total + row[key], 0);
export const badge = (state) => h("span", { class: `badge ${state}` }, state);
export const yesNo = (ok) => h("span", { class: ok ? "yes" : "no" }, ok ? "✓ yes" : "✗ no");
export const fact = (name, value) => h("div", {}, h("dt", {}, name), h("dd", {}, value));
export const head = (...names) =>
  h("thead", {}, h("tr", {}, names.map((n) => h("th", {}, n))));
export const td = (content, cls) => h("td", { class: cls }, content);
export const emptyRow = (span, text) =>
  h("tr", {}, h("td", { colspan: span, class: "empty" }, text));
export const button = (text, onclick, cls) =>
  h("button", { type: "button", class: cls, onclick }, text);

/** "provider / service": how every chart and bar names a team's service. */
export const teamLabel = (row) => `${row.provider_name} / ${row.service_name}`;

/** A table cell naming a team's service: the provider in bold, the service under it. */
export const team = (row) =>
  [h("strong", { class: "team" }, row.provider_name), h("div", { class: "sub" }, row.service_name)];

export function outcomes(counts) {
  const seen = Object.entries(counts).filter(([, n]) => n > 0);
  if (!seen.length) return "—";
  return seen.map(([name, n]) => h("span", { class: `outcome ${name}` }, `${name} ${n}`));
}

export function progress(done, total) {
  const fill = h("span", { class: "fill" });
  fill.style.width = `${total ? (100 * done) / total : 0}%`;
  const track = h("span", { class: "track", role: "progressbar", "aria-valuenow": done,
    "aria-valuemin": 0, "aria-valuemax": total }, fill);
  const count = h("span", { class: "count" }, `${done} / ${total}`);
  return h("span", { class: "progress" }, track, count);
}
