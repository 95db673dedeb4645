// One run: its facts and the organizer's controls, each team's progress, the charts over
// time, the leaderboard, the downloads, and the failures and per-class figures of a service.

import { api, download } from "./api.js";
import { confirmAction } from "./dialog.js";
import { ACTIVE, badge, button, emptyRow, eta, fact, h, head, localTime, METRIC_LABEL, ms,
  outcomes, perSecond, progress, runWindow, td, team, teamLabel, when } from "./dom.js";
import { insightCard } from "./insight.js";
import { leaderboard } from "./leaderboard.js";
import { act, current, nextGeneration, poll, view, who } from "./page.js";
import { resendCard } from "./resend.js";
import { timelineCard } from "./timeline.js";

const RUN_POLL_MS = 1000;
// Live scores and the timeline cost the hub a pass over every answer so far: not every
// tick while a run goes, and once more at its end.
const LEADERBOARD_EVERY = 5;
const TIMELINE_EVERY = 2;

export function runView(id, gen) {
  const summary = h("div");
  const controls = h("div", { class: "controls", id: "controls" });
  const teams = h("tbody");
  const board = h("div");
  const downloads = h("div", { id: "downloads" });
  const timeline = timelineCard(id);
  const insight = insightCard(id);
  // A re-send reopens a completed run: the poll, ended, starts again (`watch`).
  const resend = who.admin ? resendCard(id, () => watch()) : null;
  view.replaceChildren(
    h("p", { class: "crumbs" }, h("a", { href: "#/runs" }, "← All runs")),
    h("section", { class: "card" }, summary, controls,
      h("table", { id: "progress" },
        head("Team", "Status", "Progress", "Outcomes", "img/s", "p50 ms", "p99 ms", "ETA"), teams)),
    resend?.card ?? "",
    timeline.card,
    h("section", { class: "card", id: "leaderboard" }, h("h2", {}, "Leaderboard"), board),
    h("section", { class: "card" }, h("h2", {}, "Downloads"), downloads),
    insight.card,
  );
  const again = () => runView(id, nextGeneration());
  let ticks = 0;
  let rows = null;
  let shown = null; // what the controls and downloads were drawn for
  const load = async () => {
    const run = await api(`/runs/${id}`);
    const tick = ticks++;
    const ending = !ACTIVE.has(run.state);
    if (tick % LEADERBOARD_EVERY === 0 || ending) {
      // An unpublished evaluation's leaderboard is refused (403): a note, not an error.
      rows = await api(`/runs/${id}/leaderboard`).catch((err) => {
        if (err.status === 401) throw err;
        return err;
      });
    }
    if (tick % TIMELINE_EVERY === 0 || ending) await timeline.refresh(run);
    return [run, rows];
  };
  const render = ([run, rows]) => {
    resend?.services(run);
    summary.replaceChildren(...runSummary(run));
    teams.replaceChildren(...run.services.flatMap(teamRows));
    if (!run.services.length) teams.replaceChildren(emptyRow(8, "No services in this run."));
    const note = rows instanceof Error && h("p", { class: "note" }, rows.message);
    board.replaceChildren(...(note ? [note] : leaderboard(run, rows)));
    const drawnFor = `${run.state}|${run.published}|${rows instanceof Error}`;
    if (drawnFor !== shown) {
      shown = drawnFor;
      controls.replaceChildren(...(who.admin ? runControls(run, gen, again) : []));
      downloads.replaceChildren(...downloadButtons(run, rows instanceof Error));
      insight.services(run);
    }
    return ACTIVE.has(run.state);
  };
  let watching = false;
  const watch = () => {
    if (watching) return;
    watching = true;
    ticks = 0; // the leaderboard and timeline are read again at once
    poll(gen, RUN_POLL_MS, load, render).finally(() => { watching = false; });
  };
  watch();
}

function runSummary(run) {
  const windowLine = runWindow(run);
  return [
    h("h1", {}, `Run #${run.id} `, badge(run.state),
      run.phase === "evaluation" && run.published ? h("span", { class: "badge published" }, "published") : null),
    windowLine ? h("p", { id: "window" }, windowLine) : "",
    h("dl", { class: "facts" },
      fact("Dataset", run.dataset),
      fact("Phase", run.phase),
      fact("Primary metric", METRIC_LABEL[run.metric] ?? run.metric),
      fact("Started by", run.started_by_name ?? "organizer"),
      fact("Created", when(run.created_at)),
      fact("Started", when(run.started_at)),
      fact("Finished", when(run.finished_at)),
      run.start_at ? fact("Starts at", localTime(run.start_at)) : null,
      run.deadline ? fact("Deadline", localTime(run.deadline)) : null,
    ),
    run.stopped_at_deadline ? h("p", { class: "note", id: "deadline-note" },
      "The run stopped at its deadline: images not answered by then are recorded as missed and count as wrong.") : "",
    run.error ? h("p", { class: "reason" }, run.error) : "",
    run.part === "public" ? h("p", { class: "note", id: "part-note" },
      "A challenge submission: progress and counts are of the public part of the images only "
      + "until the organizer publishes the final ranking.") : "",
  ];
}

/** The organizer's buttons for this state; each confirms first when it cannot be undone
 * without loss (a cancel drops what is in flight; unpublishing hides a board teams saw). */
function runControls(run, gen, again) {
  const post = (trigger, path, body) => act(trigger, async () => {
    await api(`/runs/${run.id}/${path}`, "POST", body);
    if (current(gen)) again();
  });
  const buttons = [];
  if (ACTIVE.has(run.state)) {
    buttons.push(button("Cancel run", async (event) => {
      const trigger = event.currentTarget;
      const sure = await confirmAction(
        `Cancel run #${run.id}? The hub stops sending new requests; answers recorded so far stay, and Resume continues later.`,
        "Cancel run");
      if (sure) post(trigger, "cancel");
    }, "danger"));
  }
  if (["cancelled", "failed"].includes(run.state)) {
    buttons.push(button("Resume run", (event) => post(event.currentTarget, "resume")));
  }
  if (run.phase === "evaluation" && !run.published) {
    buttons.push(button("Publish leaderboard", (event) => post(event.currentTarget, "publish")));
  }
  if (run.phase === "evaluation" && run.published) {
    buttons.push(button("Unpublish leaderboard", async (event) => {
      const trigger = event.currentTarget;
      const sure = await confirmAction(
        `Unpublish the leaderboard of run #${run.id}? Teams no longer see it.`, "Unpublish");
      if (sure) post(trigger, "publish", { published: false });
    }, "danger"));
  }
  return buttons;
}

/** Exports as files: they need the token, so each is fetched and handed to the browser. */
function downloadButtons(run, boardHidden) {
  const get = (label, path, name) => button(label,
    (event) => act(event.currentTarget, () => download(path, name)), "secondary");
  const base = `/runs/${run.id}`;
  const items = [];
  if (!boardHidden) {
    items.push(get("Leaderboard CSV", `${base}/leaderboard?format=csv`, `run-${run.id}-leaderboard.csv`));
  }
  if (who.admin) {
    items.push(get("All results CSV", `${base}/results?format=csv`, `run-${run.id}.csv`),
      get("All results JSONL", `${base}/results?format=jsonl`, `run-${run.id}.jsonl`));
  }
  const lines = [h("p", { class: "actions" }, items)];
  // A team downloads its own results of dry runs only (the evaluation set stays hidden).
  if (who.admin || run.phase === "dryrun") {
    for (const s of run.services) {
      const path = (fmt) => `${base}/results?service=${encodeURIComponent(s.service_guid)}&format=${fmt}`;
      lines.push(h("p", { class: "actions", "data-service": s.service_guid },
        h("span", { class: "label" }, `${teamLabel(s)}: `),
        get("Results CSV", path("csv"), `run-${run.id}-${s.service_guid}.csv`),
        get("Results JSONL", path("jsonl"), `run-${run.id}-${s.service_guid}.jsonl`)));
    }
  } else {
    lines.push(h("p", { class: "note" },
      "Results of an evaluation stay with the organizer (the test set is hidden)."));
  }
  return lines;
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
