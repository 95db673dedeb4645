// RecogHub dashboard: hash-routed views (#/runs, #/runs/<id>, #/services) over the JSON
// API, no libraries. Data enters the page only as text (text nodes, textContent, attribute
// values), never as markup: team and service names are user input.

const API = "/api/v1";
const TOKEN_KEY = "recoghub.token";
const SVG_NS = "http://www.w3.org/2000/svg";
const RUN_POLL_MS = 1000;
const LIST_POLL_MS = 3000;
const LEADERBOARD_EVERY = 5; // run polls per leaderboard refresh while a run goes
const ACTIVE = new Set(["queued", "running"]);
const METRICS = [["top1", "Top-1"], ["top5", "Top-5"], ["coverage_at_95", "Cov@95"],
  ["coverage_at_99", "Cov@99"], ["micro_ap", "µAP"]];
const METRIC_LABEL = Object.fromEntries(METRICS);

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const signIn = document.getElementById("sign-in");
const errorBox = document.getElementById("error");
let generation = 0; // bumped by every navigation: a poll of an older view stops

// ---- the API -------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, detail, code) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

/** GET (or POST) an API path with the tab's token; throws ApiError with the hub's detail. */
async function api(path, method = "GET") {
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers: { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) ?? ""}` },
    });
  } catch (err) {
    throw new ApiError(0, `cannot reach the hub (${err.message})`, "unreachable");
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = typeof body?.detail === "string" ? body.detail : response.statusText;
    throw new ApiError(response.status, detail || "request failed", body?.code ?? "http_error");
  }
  return body;
}

// ---- building the page (text only) -----------------------------------------------------

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
const h = (tag, attrs = {}, ...children) => build(document.createElement(tag), attrs, children);
const svg = (tag, attrs = {}, ...children) =>
  build(document.createElementNS(SVG_NS, tag), attrs, children);

const pct = (v) => (v == null ? "—" : `${(v * 100).toFixed(1)}%`);
const ms = (v) => (v == null ? "—" : v.toFixed(v < 10 ? 2 : 1));
const perSecond = (v) => (v == null ? "—" : v.toFixed(1));
const short = (text, n = 22) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);
const sum = (rows, key) => rows.reduce((total, row) => total + row[key], 0);
const badge = (state) => h("span", { class: `badge ${state}` }, state);
const yesNo = (ok) => h("span", { class: ok ? "yes" : "no" }, ok ? "✓ yes" : "✗ no");
const fact = (name, value) => h("div", {}, h("dt", {}, name), h("dd", {}, value));
const head = (...names) => h("thead", {}, h("tr", {}, names.map((n) => h("th", {}, n))));
const td = (content, cls) => h("td", { class: cls }, content);
const emptyRow = (span, text) => h("tr", {}, h("td", { colspan: span, class: "empty" }, text));

/** A date-time from the API (UTC, maybe without a zone) in the reader's local time. */
function when(iso) {
  if (!iso) return "—";
  const date = new Date(/(Z|[+-]\d\d:?\d\d)$/i.test(iso) ? iso : `${iso}Z`);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

function eta(seconds) {
  if (seconds == null) return "—";
  const s = Math.round(seconds);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

function outcomes(counts) {
  const seen = Object.entries(counts).filter(([, n]) => n > 0);
  if (!seen.length) return "—";
  return seen.map(([name, n]) => h("span", { class: `outcome ${name}` }, `${name} ${n}`));
}

function progress(done, total) {
  const fill = h("span", { class: "fill" });
  fill.style.width = `${total ? (100 * done) / total : 0}%`;
  const track = h("span", { class: "track", role: "progressbar", "aria-valuenow": done,
    "aria-valuemin": 0, "aria-valuemax": total }, fill);
  const count = h("span", { class: "count" }, `${done} / ${total}`);
  return h("span", { class: "progress" }, track, count);
}

const team = (row) =>
  [h("strong", { class: "team" }, row.provider_name), h("div", { class: "sub" }, row.service_name)];

// ---- errors, sign-in and navigation ------------------------------------------------------

function showError(err) {
  errorBox.hidden = false;
  errorBox.replaceChildren(h("strong", {}, err.status ? `Error ${err.status}: ` : "Error: "),
    err.message, err.code ? h("span", { class: "code" }, ` (${err.code})`) : null);
}
const clearError = () => { errorBox.hidden = true; };

/** Show an error; a rejected token (401) also sends the person back to sign in. */
function fail(err) {
  const error = err instanceof ApiError ? err : new ApiError(0, String(err), "");
  if (error.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn();
  }
  showError(error);
}

function showSignIn() {
  generation += 1;
  nav.hidden = true;
  view.replaceChildren();
  signIn.hidden = false;
  signIn.elements.token.value = "";
  signIn.elements.token.focus();
}

signIn.addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, signIn.elements.token.value.trim());
  route();
});

document.getElementById("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  clearError();
  showSignIn();
});

function route() {
  const gen = ++generation;
  clearError();
  if (!sessionStorage.getItem(TOKEN_KEY)) return showSignIn();
  signIn.hidden = true;
  nav.hidden = false;
  const run = location.hash.match(/^#\/runs\/(\d+)$/);
  const name = location.hash === "#/services" ? "services" : "runs";
  for (const link of nav.querySelectorAll("a")) {
    link.classList.toggle("active", link.dataset.view === name);
  }
  if (run) runView(Number(run[1]), gen);
  else if (name === "services") servicesView(gen);
  else runsView(gen);
}

const sleep = (msec) => new Promise((resolve) => setTimeout(resolve, msec));

/** load() then render(data) until render returns false or the view is left. */
async function poll(gen, everyMs, load, render) {
  while (gen === generation) {
    let data;
    try {
      data = await load();
    } catch (err) {
      if (gen === generation) fail(err);
      return;
    }
    if (gen !== generation || !render(data)) return;
    await sleep(everyMs);
  }
}

// ---- runs ------------------------------------------------------------------------------

function runsView(gen) {
  const body = h("tbody");
  const columns = ["Run", "Dataset", "Phase", "Metric", "State", "Teams", "Progress"];
  view.replaceChildren(
    h("section", { class: "card" }, h("h1", {}, "Runs"),
      h("table", { id: "runs" }, head(...columns, "Created", "Finished"), body)),
  );
  poll(gen, LIST_POLL_MS, () => api("/runs"), (runs) => {
    body.replaceChildren(...(runs.length ? runs.map(runRow) : [emptyRow(9, "No runs yet.")]));
    return runs.some((run) => ACTIVE.has(run.state));
  });
}

function runRow(run) {
  const done = sum(run.services, "done");
  return h("tr", { "data-run": run.id },
    td(h("a", { href: `#/runs/${run.id}` }, `#${run.id}`)), td(run.dataset), td(run.phase),
    td(METRIC_LABEL[run.metric] ?? run.metric), td(badge(run.state)),
    td(run.services.length, "num"), td(progress(done, sum(run.services, "total"))),
    td(when(run.created_at)), td(when(run.finished_at)));
}

function runView(id, gen) {
  const summary = h("div");
  const teams = h("tbody");
  const board = h("div");
  view.replaceChildren(
    h("p", { class: "crumbs" }, h("a", { href: "#/runs" }, "← All runs")),
    h("section", { class: "card" }, summary,
      h("table", { id: "progress" },
        head("Team", "Status", "Progress", "Outcomes", "img/s", "p50 ms", "p99 ms", "ETA"), teams)),
    h("section", { class: "card", id: "leaderboard" }, h("h2", {}, "Leaderboard"), board),
  );
  let ticks = 0;
  let rows = null;
  const load = async () => {
    const run = await api(`/runs/${id}`);
    // Live scores cost the hub a pass over every answer so far: every 5th tick, and at the end.
    if (ticks++ % LEADERBOARD_EVERY === 0 || !ACTIVE.has(run.state)) {
      // An unpublished evaluation's leaderboard is refused (403): a note, not an error.
      rows = await api(`/runs/${id}/leaderboard`).catch((err) => {
        if (err.status === 401) throw err;
        return err;
      });
    }
    return [run, rows];
  };
  poll(gen, RUN_POLL_MS, load, ([run, rows]) => {
    summary.replaceChildren(...runSummary(run));
    teams.replaceChildren(...run.services.flatMap(teamRows));
    if (!run.services.length) teams.replaceChildren(emptyRow(8, "No services in this run."));
    const note = rows instanceof Error && h("p", { class: "note" }, rows.message);
    board.replaceChildren(...(note ? [note] : leaderboard(run, rows)));
    return ACTIVE.has(run.state);
  });
}

function runSummary(run) {
  return [
    h("h1", {}, `Run #${run.id} `, badge(run.state)),
    h("dl", { class: "facts" },
      fact("Dataset", run.dataset),
      fact("Phase", run.phase),
      fact("Primary metric", METRIC_LABEL[run.metric] ?? run.metric),
      fact("Created", when(run.created_at)),
      fact("Started", when(run.started_at)),
      fact("Finished", when(run.finished_at)),
    ),
    run.error ? h("p", { class: "reason" }, run.error) : "",
  ];
}

function teamRows(s) {
  // A `down` service is paused (the hub probes it until it answers or is given up on).
  const left = s.status === "down" ? "paused"
    : ["ongoing", "pending"].includes(s.status) ? eta(s.eta_s) : "—";
  const row = h("tr", { "data-service": s.service_guid },
    td(team(s)), td(badge(s.status), "status"), td(progress(s.done, s.total)),
    td(outcomes(s.outcomes), "outcomes"), td(perSecond(s.images_per_s), "num"),
    td(ms(s.latency_ms.p50), "num"), td(ms(s.latency_ms.p99), "num"), td(left, "num"));
  if (!s.reason) return [row];
  const reason = h("td", { colspan: 8, class: "reason" }, s.reason);
  return [row, h("tr", { class: "reason-row" }, reason)];
}

// ---- the leaderboard and its charts ------------------------------------------------------

function leaderboard(run, rows) {
  if (!rows.length) return [h("p", { class: "note" }, "No rows yet.")];
  const shown = ([key]) => key === run.metric || rows.some((r) => r[key] != null);
  const columns = [
    ["rank", "#", (r) => r.rank],
    ["team", "Team", team],
    ["status", "Status", (r) => badge(r.status)],
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
    h("tbody", {}, rows.map((r) => h("tr", { "data-service": r.service_guid }, cells(r)))));
  const primary = METRIC_LABEL[run.metric] ?? run.metric;
  return [
    table,
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
}

/** A horizontal bar chart, one row per team; bars(row) gives [value, class] pairs drawn
 * from 0 in order (so the longest goes first), text(row) the figure shown at the end. */
function barChart(rows, bars, max, text) {
  const [width, labelWidth, rowHeight] = [480, 170, 28];
  const plotWidth = width - labelWidth - 100;
  const viewBox = `0 0 ${width} ${rows.length * rowHeight + 8}`;
  const chart = svg("svg", { class: "chart", viewBox, role: "img" });
  rows.forEach((r, i) => {
    const y = 4 + i * rowHeight;
    const middle = y + rowHeight / 2;
    const name = `${r.rank}. ${r.provider_name}`;
    const group = svg("g", {},
      svg("title", {}, `${name} (${r.service_name}): ${text(r)}`),
      svg("text", { x: labelWidth - 8, y: middle, class: "label" }, short(name)));
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

// ---- services and their health ------------------------------------------------------------

function servicesView(gen) {
  const body = h("tbody");
  view.replaceChildren(
    h("section", { class: "card" }, h("h1", {}, "Services"),
      h("p", { class: "note" },
        "Check pings every instance of a service and sends it one probe image."),
      h("table", { id: "services" },
        head("Service", "Team", "Endpoints", "Protocol", "Enabled", "Concurrency", ""), body)),
  );
  poll(gen, 0, () => api("/services"), (services) => {
    body.replaceChildren(
      ...(services.length ? services.flatMap(serviceRows) : [emptyRow(7, "No services yet.")]),
    );
    return false;
  });
}

function serviceRows(s) {
  const result = h("td", { colspan: 7, class: "check-result" });
  const resultRow = h("tr", { class: "check-row", hidden: true }, result);
  const button = h("button", { type: "button" }, "Check");
  button.addEventListener("click", () => check(s, button, resultRow, result));
  const name = [h("strong", {}, s.name), h("div", { class: "sub mono" }, s.guid)];
  const endpoints = s.endpoints.map((url) => h("div", { class: "mono" }, url));
  // The model a model server is asked for (SPEC §11) under the protocol's name.
  const model = (s.protocol_options || {}).model;
  const protocol = [h("div", {}, s.protocol),
    model ? h("div", { class: "sub mono" }, model) : null];
  return [h("tr", { "data-service": s.guid }, td(name), td(s.provider_name), td(endpoints),
    td(protocol), td(s.enabled ? "yes" : "no"), td(s.max_concurrency, "num"), td(button)),
    resultRow];
}

async function check(s, button, row, cell) {
  button.disabled = true;
  button.textContent = "Checking…";
  row.hidden = false;
  cell.replaceChildren(h("span", { class: "note" }, "Checking every instance…"));
  try {
    const result = await api(`/services/${encodeURIComponent(s.guid)}/check`, "POST");
    cell.replaceChildren(...checkReport(result));
  } catch (err) {
    if (err.status === 401) return fail(err);
    cell.replaceChildren(h("span", { class: "reason" }, `${err.message} (${err.code})`));
  } finally {
    button.disabled = false;
    button.textContent = "Check";
  }
}

function checkReport(result) {
  return [
    h("p", { class: "verdict" }, badge(result.ok ? "passed" : "failed"),
      result.ok ? " every instance is reachable and answers well" : " some instance failed"),
    h("table", { class: "instances" },
      head("Instance", "Reachable", "Ping ms", "Format ok", "Outcome", "Probe ms", "Detail"),
      h("tbody", {}, result.instances.map((i) => h("tr", {},
        td(i.instance, "mono"), td(yesNo(i.reachable)), td(ms(i.ping_ms), "num"),
        td(yesNo(i.format_ok)), td(i.outcome), td(ms(i.latency_ms), "num"), td(i.detail))))),
  ];
}

window.addEventListener("hashchange", route);
route();
