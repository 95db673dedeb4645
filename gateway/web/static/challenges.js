// Challenges (SPEC §12): the list, and a challenge's page — its phases with windows and
// limits, the caller's submissions left, each phase's leaderboard and the caller's
// history (phase.js), and the organizer's controls. A public challenge's page is also
// readable without a token (`publicChallengeView`): names and scores only.

import { api } from "./api.js";
import { emptyRow, h, head, td } from "./dom.js";
import { current, nextGeneration, poll, view, who } from "./page.js";
import { phaseCard } from "./phase.js";

const PAGE_POLL_MS = 3000;
const GOING = new Set(["open", "closing"]);

export function challengesView(gen) {
  const body = h("tbody");
  view.replaceChildren(h("section", { class: "card" },
    h("h1", {}, who.admin ? "Challenges" : "Your challenges"),
    h("p", { class: "note" }, who.admin
      ? "Create or change a challenge with `recoghub challenge apply FILE.yaml`."
      : "The challenges your team may enter, and the public ones."),
    h("table", { id: "challenges" }, head("Challenge", "Title", "Phases", "Public"), body)));
  poll(gen, 0, () => api("/challenges"), (list) => {
    body.replaceChildren(...(list.length ? list.map((c) => h("tr", { "data-challenge": c.slug },
      td(h("a", { href: `#/challenges/${c.slug}` }, c.slug)), td(c.title), td(c.phases, "num"),
      td(c.public ? "yes" : "no"))) : [emptyRow(4, "No challenges yet.")]));
    return false;
  });
}

function header(challenge, anonymous = false) {
  return h("section", { class: "card", id: "challenge", "data-challenge": challenge.slug },
    anonymous ? null : h("p", { class: "crumbs" }, h("a", { href: "#/challenges" }, "← Challenges")),
    h("h1", {}, challenge.title),
    h("p", { class: "sub mono" }, challenge.slug, challenge.public ? " · public" : ""),
    // The description is Markdown; shown as its text (never as markup: it is input).
    challenge.description ? h("pre", { class: "description" }, challenge.description) : null,
    challenge.enrolled === false
      ? h("p", { class: "note" }, "Your team is not enrolled in this challenge.") : null);
}

/** A challenge's page for a signed-in organizer or team; polls while a phase is going. */
export async function challengeView(slug, gen) {
  const services = who.admin ? [] : await api("/services").catch(() => []);
  if (!current(gen)) return;
  const again = () => { if (current(gen)) challengeView(slug, nextGeneration()); };
  let shown = null;
  poll(gen, PAGE_POLL_MS, () => api(`/challenges/${slug}`), async (challenge) => {
    const cards = await Promise.all(challenge.phases.map((p) =>
      phaseCard(challenge, p, { services, again })));
    if (!current(gen)) return false;
    // Rebuilt only when something changed, so a form being filled in is left alone.
    const key = JSON.stringify(challenge) + cards.map((c) => c.dataset.key).join();
    if (key !== shown) {
      shown = key;
      view.replaceChildren(header(challenge), ...cards);
    }
    return challenge.phases.some((p) => GOING.has(p.state));
  });
}

/** A public challenge's page without a token: description, phases, windows, and the
 * published leaderboards (names and scores only). */
export function publicChallengeView(slug, gen) {
  poll(gen, 0, () => api(`/challenges/${slug}`), async (challenge) => {
    const cards = await Promise.all(challenge.phases.map((p) =>
      phaseCard(challenge, p, { anonymous: true })));
    if (current(gen)) {
      view.replaceChildren(header(challenge, true), ...cards,
        h("p", { class: "note" }, "Teams and the organizer: ", h("a", { href: "#/runs" }, "sign in"), "."));
    }
    return false;
  });
}
