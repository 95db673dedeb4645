// The organizer's re-send (POST /runs/{id}/resend): a service's recorded items with the
// chosen outcomes are sent again, after a confirmation; the hub's answer or error is
// shown, and the service's re-send history (GET /runs/{id}/resends) under it. Never
// built for a team (the API refuses them anyway).

import { api } from "./api.js";
import { confirmAction } from "./dialog.js";
import { button, emptyRow, h, head, td, teamLabel, when } from "./dom.js";
import { act } from "./page.js";

export function resendCard(runId, again) {
  const select = h("select", { id: "resend-service", "aria-label": "Service to re-send" });
  const choices = h("span", { id: "resend-outcomes" });
  const answer = h("p", { id: "resend-answer", role: "status" });
  const history = h("div", { id: "resend-history" });
  const send = button("Re-send", (event) => resend(event.currentTarget), "danger");
  const card = h("section", { class: "card", id: "resend" },
    h("h2", {}, "Re-send a team's images"),
    h("p", { class: "note" }, "When failures were not the team's, send the service's images "
      + "with those outcomes again: their results become history and count again only "
      + "with their new outcome."),
    h("p", { class: "actions" }, h("label", {}, "Service ", select), choices, send),
    answer, h("h3", {}, "Re-sent so far"), history);
  select.addEventListener("change", () => loadHistory());
  let drawn = false;

  /** Offer the run's services, and the outcomes the hub accepts (every one but ok). */
  function services(run) {
    if (drawn || !run.services.length) {
      card.hidden = !run.services.length;
      return;
    }
    drawn = true;
    select.replaceChildren(...run.services.map((s) =>
      h("option", { value: s.service_guid }, teamLabel(s))));
    const names = Object.keys(run.services[0].outcomes).filter((name) => name !== "ok");
    choices.replaceChildren(...names.map((name) => h("label", { class: "outcome-choice" },
      h("input", { type: "checkbox", value: name }), ` ${name}`)));
    loadHistory();
  }

  async function resend(trigger) {
    const guid = select.value;
    const label = select.selectedOptions[0]?.textContent ?? guid;
    const chosen = [...choices.querySelectorAll("input:checked")].map((box) => box.value);
    const which = chosen.length ? chosen.join(", ") : "(no outcome chosen)";
    const sure = await confirmAction(
      `Re-send ${label}'s images recorded ${which} in run #${runId}? Their results are kept `
      + "as history and taken out of the scores, and the run runs again until they are answered.",
      "Re-send");
    if (!sure) return;
    answer.replaceChildren();
    await act(trigger, async () => {
      try {
        const done = await api(`/runs/${runId}/resend`, "POST",
          { service_guid: guid, outcomes: chosen });
        const each = Object.entries(done.outcomes).map(([name, n]) => `${name} ${n}`).join(", ");
        answer.className = "note";
        answer.textContent = `Re-sent ${done.images} images of ${label} (${each}); `
          + `${done.resent} re-sent in this run in all; the run is ${done.run_state}.`;
      } catch (err) {
        if (err.status === 401) throw err;
        answer.className = "reason";
        answer.textContent = `The hub refused: ${err.message} (${err.code})`;
        return;
      }
      await loadHistory();
      again();
    });
  }

  async function loadHistory() {
    const guid = select.value;
    if (!guid) return;
    const rows = await api(`/runs/${runId}/resends?service=${encodeURIComponent(guid)}`)
      .catch((err) => err);
    if (select.value !== guid) return; // another service was chosen meanwhile
    history.replaceChildren(rows instanceof Error
      ? h("p", { class: "reason" }, `${rows.message} (${rows.code})`) : historyTable(rows));
  }
  return { card, services };
}

function historyTable(rows) {
  const lines = rows.map((r) => h("tr", {},
    td(r.key, "mono"), td(r.outcome), td(r.attempts, "num"), td(r.http_status ?? "—", "num"),
    td(r.detail ?? "—", "mono"), td(when(r.finished_at)), td(when(r.resent_at))));
  return h("table", { class: "resends" },
    head("Image", "Earlier outcome", "Attempts", "HTTP", "Detail", "Recorded", "Re-sent"),
    h("tbody", {}, lines.length ? lines : emptyRow(7, "No images re-sent.")));
}
