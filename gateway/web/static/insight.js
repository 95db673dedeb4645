// Why a service lost points: its failures grouped by kind (GET /runs/{id}/failures) and
// its figures per true label (GET /runs/{id}/services/{guid}/classes). A team sees its
// own, of dry runs only; otherwise the hub's reason is shown.

import { api } from "./api.js";
import { button, emptyRow, h, head, pct, td, teamLabel, when } from "./dom.js";
import { act, who } from "./page.js";

export function insightCard(runId) {
  const select = h("select", { id: "insight-service", "aria-label": "Service" });
  const failures = h("div", { id: "failures" });
  const classes = h("div", { id: "classes" });
  const show = button("Show", () => load(show));
  const actions = h("p", { class: "actions" }, h("label", {}, "Service ", select), show);
  const figures = h("div", {}, h("h3", {}, "Failures by kind"), failures,
    h("h3", {}, "Per true label"), classes);
  const hidden = h("p", { class: "note", id: "insight-hidden" },
    "An evaluation's failures and per-class figures stay with the organizer (the test set "
    + "is hidden); a dry run shows your own.");
  const card = h("section", { class: "card", id: "insight" },
    h("h2", {}, "Failures and per-class figures"), actions, figures, hidden);
  select.addEventListener("change", () => load(show));

  async function load(trigger) {
    const guid = select.value;
    if (!guid) return;
    await act(trigger, async () => {
      const [groups, perClass] = await Promise.all([
        api(`/runs/${runId}/failures`).catch((err) => err),
        api(`/runs/${runId}/services/${encodeURIComponent(guid)}/classes`).catch((err) => err),
      ]);
      for (const answer of [groups, perClass]) if (answer?.status === 401) throw answer;
      if (select.value !== guid) return; // another service was chosen meanwhile
      failures.replaceChildren(groups instanceof Error ? reason(groups)
        : failureTable(groups.filter((g) => g.service_guid === guid)));
      classes.replaceChildren(perClass instanceof Error ? reason(perClass) : classTable(perClass));
    });
  }

  /** Offer the run's services (those this person sees); the first is shown at once. */
  function services(run) {
    // A team's figures exist for its dry runs only: no button that could only fail.
    const shown = who.admin || run.phase === "dryrun";
    actions.hidden = figures.hidden = !shown;
    hidden.hidden = shown;
    if (!shown) return;
    const before = select.value;
    select.replaceChildren(...run.services.map((s) =>
      h("option", { value: s.service_guid }, teamLabel(s))));
    if (before) select.value = before;
    if (run.services.length) load(show);
    else failures.replaceChildren(h("p", { class: "note" }, "No services in this run."));
  }
  return { card, services };
}

const reason = (err) => h("p", { class: "note" }, err.message);

function failureTable(groups) {
  const rows = groups.map((g) => h("tr", {},
    td(g.outcome), td(g.http_status ?? "—", "num"), td(g.detail, "mono"), td(g.count, "num"),
    td(when(g.first_seen)), td(when(g.last_seen)),
    td(g.request_ids.map((id) => h("div", { class: "mono" }, id)))));
  return h("table", { class: "failures" },
    head("Outcome", "HTTP", "Detail", "Count", "First seen", "Last seen", "Request ids"),
    h("tbody", {}, rows.length ? rows : emptyRow(7, "No failures.")));
}

function classTable(perClass) {
  const rows = perClass.map((c) => h("tr", { "data-label": c.label },
    td(c.label), td(c.images, "num"), td(pct(c.top1_accuracy), "num"),
    td(pct(c.top5_accuracy), "num"), td(c.failed, "num"),
    td(c.wrong_top1.map((w) => `${w.tag} ×${w.count}`).join(", ") || "—")));
  return h("table", { class: "classes" },
    head("True label", "Images", "Top-1", "Top-5", "Failed", "Most frequent wrong first tags"),
    h("tbody", {}, rows.length ? rows : emptyRow(6, "No answers yet.")));
}
