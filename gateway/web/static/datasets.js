// Datasets: the organizer opens or closes each to team dry runs and deletes one no run
// uses; a team sees the ones open to it (and starts dry runs from the Runs view).

import { api } from "./api.js";
import { confirmAction } from "./dialog.js";
import { button, emptyRow, h, head, td, when } from "./dom.js";
import { act, current, nextGeneration, poll, view, who } from "./page.js";

export function datasetsView(gen) {
  const body = h("tbody");
  const columns = who.admin
    ? ["Dataset", "Format", "Images", "Labels", "Created", "Team dry runs", ""]
    : ["Dataset", "Kind", "Images"];
  const note = who.admin
    ? "Open a dataset to let teams start dry runs on it themselves (within their daily quota)."
    : "The datasets the organizer opened to your dry runs (start one from Runs).";
  view.replaceChildren(h("section", { class: "card" },
    h("h1", {}, who.admin ? "Datasets" : "Datasets open to your dry runs"),
    h("p", { class: "note" }, note),
    h("table", { id: "datasets" }, head(...columns), body)));
  const again = () => { if (current(gen)) datasetsView(nextGeneration()); };
  poll(gen, 0, () => api("/datasets"), (datasets) => {
    const rows = datasets.map((d) => (who.admin ? adminRow(d, again) : teamRow(d)));
    body.replaceChildren(...(rows.length ? rows : [emptyRow(columns.length, "No datasets.")]));
    return false;
  });
}

const teamRow = (d) => h("tr", { "data-dataset": d.id }, td(d.name), td(d.kind), td(d.images, "num"));

function adminRow(d, again) {
  const patch = (trigger, fields) => act(trigger, async () => {
    await api(`/datasets/${d.id}`, "PATCH", fields);
    again();
  });
  const toggle = button(d.open_to_teams ? "Close to teams" : "Open to teams",
    (event) => patch(event.currentTarget, { open_to_teams: !d.open_to_teams }), "secondary");
  const remove = button("Delete", async (event) => {
    const trigger = event.currentTarget;
    if (!(await confirmAction(`Delete dataset ${d.name}? Its images are removed from the hub.`,
      "Delete dataset"))) return;
    await act(trigger, async () => {
      await api(`/datasets/${d.id}`, "DELETE");
      again();
    });
  }, "danger");
  const open = h("span", { class: d.open_to_teams ? "yes" : "no" }, d.open_to_teams ? "open" : "closed");
  return h("tr", { "data-dataset": d.id }, td(d.name), td(d.format), td(d.images, "num"),
    td(d.labels, "num"), td(when(d.created_at)), td([open, " ", toggle]), td(remove));
}
