// One phase of a challenge on its page: its facts, the caller's submissions left, the
// submit forms (a team: a live run; a prediction file for an offline or both phase,
// phasefiles.js) or the organizer's controls (run every enrolled service, download the
// images, close, publish), the leaderboard — honest about what it stands on: the public part's live
// scores while open, the final ranking once published — and the caller's history.

import { api } from "./api.js";
import { confirmAction } from "./dialog.js";
import { badge, button, emptyRow, fact, h, head, localTime, METRIC_LABEL, pct, td } from "./dom.js";
import { act, who } from "./page.js";
import { fileForm, imagesButton, scoringProgress } from "./phasefiles.js";

const OPEN = "open";

/** "per_week 2, total 3", or "no limit". */
export function limitText(limit) {
  const parts = ["per_day", "per_week", "total"].filter((k) => limit[k] != null)
    .map((k) => `${k.replace("_", " ")} ${limit[k]}`);
  return parts.length ? parts.join(", ") : "no limit";
}

/** The caller's submissions to a phase: made and left, and when the next is allowed. */
export function leftText(yours) {
  if (!yours) return null;
  if (yours.left == null) return `${yours.made} made, no limit`;
  const parts = [`${yours.made} made, ${yours.left} left`];
  if (yours.left === 0 && yours.next_allowed_at) parts.push(" · next at ", localTime(yours.next_allowed_at));
  return parts;
}

/** The facts of a phase: its window, limit, what counts, what is shown. */
export function phaseFacts(p) {
  const split = p.public_fraction < 1
    ? `${Math.round(p.public_fraction * 100)}% public (live), the rest decides` : "all images";
  return h("dl", { class: "facts" },
    fact("Opens", localTime(p.opens_at)), fact("Closes", localTime(p.closes_at)),
    fact("Kind", p.kind + (p.dry_run ? " (dry run)" : "")),
    fact("Metric", METRIC_LABEL[p.metric] ?? p.metric),
    fact("Limit", limitText(p.submission_limit)),
    fact("Counts", p.counts === "selected" ? `selected (up to ${p.selection_limit})` : p.counts),
    fact("Leaderboard", p.visible === "live" ? "live" : "at close"),
    fact("Split", split));
}

/** The leaderboard the caller may see, or the hub's words for why not (a 403). */
async function loadBoard(path, p, anonymous) {
  if (anonymous && p.state !== "published") {
    return { note: "The leaderboard is shown here once the organizer publishes the final ranking." };
  }
  try {
    return { board: await api(`${path}/leaderboard`) };
  } catch (err) {
    if (err.status === 403) return { note: err.message };
    throw err;
  }
}

function boardCaption(board) {
  if (board.final) {
    const on = board.part === "all" ? "all images" : `the ${board.part} part`;
    return h("p", { class: "board-note final" }, h("span", { class: "badge passed" }, "final"),
      ` Final ranking on ${on}.`);
  }
  return h("p", { class: "board-note live" }, h("span", { class: "badge provisional" },
    `${board.part} part`), ` Live scores on the ${board.part} part of the images only: the final `
    + "ranking, on the private part, is shown once the organizer publishes it.");
}

/** The leaderboard's rows; on the public page names and scores only. */
function boardTable(p, board, anonymous) {
  const metric = p.metric;
  const label = METRIC_LABEL[metric] ?? metric;
  const rows = board.rows.map((r) => {
    const scores = r.scores ?? {};
    const counts = anonymous ? [] : [td(r.submissions, "num"), td(r.submissions_left ?? "—", "num"),
      td(localTime(r.last_submission_at))];
    return h("tr", { "data-team": r.provider_name, class: r.baseline ? "baseline" : null },
      td(r.baseline ? "baseline" : (r.rank ?? "—"), "num"), td(h("strong", {}, r.provider_name)),
      td(r.service_name ?? "—"), td(pct(scores[metric]), "num primary"),
      td(scores.images ?? "—", "num"), ...counts);
  });
  const columns = ["#", "Team", "Service", label, "Images",
    ...(anonymous ? [] : ["Submissions", "Left", "Last"])];
  return h("table", { class: "board", id: `board-${p.name}` }, head(...columns),
    h("tbody", {}, rows.length ? rows : [emptyRow(columns.length, "No teams yet.")]));
}

function historyTable(challenge, p, subs, again) {
  const path = `/challenges/${challenge.slug}/phases/${p.name}`;
  const selectable = p.counts === "selected" && p.state === OPEN;
  const rows = subs.map((s) => {
    const score = s.scores
      ? [pct(s.scores[p.metric]), h("span", { class: "sub" }, ` ${s.scores.part}`)] : "hidden";
    const choose = selectable ? button(s.selected ? "Unselect" : "Select", (event) =>
      act(event.currentTarget, async () => {
        await api(`${path}/submissions/${s.id}/select`, "POST", { selected: !s.selected });
        again();
      }), "secondary") : null;
    return h("tr", { "data-submission": s.id },
      td(`#${s.id}`), td(localTime(s.created_at)), td(s.provider_name),
      td(s.service_name ?? "file"), td(s.run_id ? h("a", { href: `#/runs/${s.run_id}` }, `#${s.run_id}`) : "—"),
      td(fileStatus(s) ?? (s.status ? badge(s.status) : "—")),
      td(`${s.images_done} / ${s.images_total}`, "num"),
      td(score, "num"), td([s.selected ? "✓ " : "", choose]));
  });
  return h("table", { class: "history", id: `history-${p.name}` },
    head("Submission", "Made", "Team", "Service", "Run", "Status", "Images",
      METRIC_LABEL[p.metric] ?? p.metric, "Counts"),
    h("tbody", {}, rows.length ? rows : [emptyRow(9, "No submissions yet.")]));
}

/** A file's state, with its progress while it scores; null for a live run. */
function fileStatus(s) {
  if (!s.state) return null;
  if (s.state === "scoring") return [badge("scoring"), " ", ...scoringProgress(s)];
  return s.state === "failed" ? [badge("failed"), ` ${s.error ?? ""}`] : badge(s.state);
}

function submitForm(challenge, p, services, again) {
  if (p.state !== OPEN || p.kind === "offline" || challenge.enrolled === false) return null;
  const mine = services.filter((s) => s.enabled);
  if (!mine.length) return h("p", { class: "note" }, "Your team has no enabled service to submit.");
  const choice = h("select", { name: "service", "aria-label": "Service" },
    mine.map((s) => h("option", { value: s.guid }, s.name)));
  const send = button("Submit", (event) => act(event.currentTarget, async () => {
    await api(`/challenges/${challenge.slug}/phases/${p.name}/submissions`, "POST",
      { service_guid: choice.value });
    again();
  }), "submit");
  return h("div", { class: "controls" }, h("span", { class: "label" }, "Submit a run of"), choice, send);
}

function organizerControls(challenge, p, again) {
  const path = `/challenges/${challenge.slug}/phases/${p.name}`;
  const post = (what, question, action) => async (event) => {
    const trigger = event.currentTarget;
    if (question && !(await confirmAction(question, action))) return;
    await act(trigger, async () => {
      await api(`${path}/${what}`, "POST");
      again();
    });
  };
  const controls = [];
  if (p.state === OPEN && p.kind !== "offline") {
    controls.push(button("Run every enrolled service", post("submissions/all"), "secondary"));
  }
  if (p.state === OPEN && p.kind !== "live") controls.push(imagesButton(challenge, p));
  if (["upcoming", OPEN, "closing"].includes(p.state)) {
    controls.push(button("Close now", post("close",
      `Close phase ${p.name} now? Its running submissions stop as at a deadline.`, "Close phase"), "danger"));
  }
  if (p.state === "closed") {
    controls.push(button("Publish final ranking", post("publish",
      `Publish the final ranking of ${p.name}? Teams (and a public page) see it from then on.`,
      "Publish")));
  }
  return controls.length ? h("div", { class: "controls" }, controls) : null;
}

/** The phase's card; `opts`: { anonymous } for the public page, else { services, again }. */
export async function phaseCard(challenge, p, opts) {
  const path = `/challenges/${challenge.slug}/phases/${p.name}`;
  const { board, note } = await loadBoard(path, p, opts.anonymous);
  const subs = opts.anonymous ? null : await api(`${path}/submissions`);
  const yours = leftText(p.yours);
  const card = h("section", { class: "card phase", "data-phase": p.name },
    h("h2", {}, p.name, " ", badge(p.state)),
    phaseFacts(p),
    yours ? h("p", { class: "yours" }, "Your submissions: ", yours) : null,
    opts.anonymous ? null : (who.admin ? organizerControls(challenge, p, opts.again)
      : [submitForm(challenge, p, opts.services, opts.again), fileForm(challenge, p, opts.again)]),
    h("h3", {}, "Leaderboard"),
    board ? [boardCaption(board), boardTable(p, board, opts.anonymous)] : h("p", { class: "note board-note" }, note),
    subs ? [h("h3", {}, who.admin ? "Submissions" : "Your submissions"),
      historyTable(challenge, p, subs, opts.again)] : null);
  card.dataset.key = JSON.stringify([board ?? note, subs]);
  return card;
}
