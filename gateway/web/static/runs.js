// The runs list, with the form that starts a run (the organizer) or a dry run (a team).

import { api } from "./api.js";
import { ACTIVE, badge, emptyRow, h, head, METRIC_LABEL, progress, runWindow, sum, td,
  when } from "./dom.js";
import { poll, view, who } from "./page.js";
import { startForm } from "./start.js";

const LIST_POLL_MS = 3000;

export function runsView(gen) {
  const body = h("tbody");
  const columns = ["Run", "Dataset", "Phase", "Metric", "State", "Teams", "Progress"];
  view.replaceChildren(
    h("section", { class: "card" }, h("h1", {}, who.admin ? "Runs" : "Your runs"),
      h("table", { id: "runs" }, head(...columns, "Started by", "Created", "Finished"), body)),
    startForm(),
  );
  poll(gen, LIST_POLL_MS, () => api("/runs"), (runs) => {
    body.replaceChildren(...(runs.length ? runs.map(runRow) : [emptyRow(10, "No runs yet.")]));
    return runs.some((run) => ACTIVE.has(run.state));
  });
}

function runRow(run) {
  const done = sum(run.services, "done");
  return h("tr", { "data-run": run.id },
    td(h("a", { href: `#/runs/${run.id}` }, `#${run.id}`)), td(run.dataset), td(run.phase),
    td(METRIC_LABEL[run.metric] ?? run.metric), td([badge(run.state), runWindow(run)], "state"),
    td(run.services.length, "num"), td(progress(done, sum(run.services, "total"))),
    td(run.started_by_name ?? "organizer"), td(when(run.created_at)), td(when(run.finished_at)));
}
