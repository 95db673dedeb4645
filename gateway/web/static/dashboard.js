// RecogHub dashboard: hash-routed views (#/runs, #/runs/<id>, #/services, #/datasets,
// #/challenges, #/challenges/<slug>) over the JSON API, as ES modules; charts by the
// vendored uPlot. The token lives in this tab's sessionStorage only. Without one, a
// challenge's page is its public page (a public challenge, read as anyone).

import { api, TOKEN_KEY } from "./api.js";
import { challengesView, challengeView, publicChallengeView } from "./challenges.js";
import { datasetsView } from "./datasets.js";
import { clearError, current, fail, nextGeneration, onSignOut, view, who } from "./page.js";
import { runView } from "./run.js";
import { runsView } from "./runs.js";
import { servicesView } from "./services.js";

const nav = document.getElementById("nav");
const signIn = document.getElementById("sign-in");
const whoBox = document.getElementById("who");

function showSignIn() {
  nextGeneration();
  nav.hidden = true;
  view.replaceChildren();
  signIn.hidden = false;
  signIn.elements.token.value = "";
  signIn.elements.token.focus();
}
onSignOut(showSignIn);

/** Who the token is (GET /whoami): the organizer, or a team with its provider record. */
async function identify() {
  const caller = await api("/whoami");
  who.admin = caller.role === "organizer";
  who.provider = caller.provider;
  whoBox.textContent = who.admin ? "organizer" : `team ${who.provider.name}`;
}

signIn.addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, signIn.elements.token.value.trim());
  route(true);
});

document.getElementById("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  clearError();
  showSignIn();
});

async function route(signingIn = false) {
  const gen = nextGeneration();
  clearError();
  const challenge = location.hash.match(/^#\/challenges\/([a-z0-9][a-z0-9-]*)$/);
  if (!sessionStorage.getItem(TOKEN_KEY)) {
    if (!challenge) return showSignIn();
    signIn.hidden = true;
    nav.hidden = true;
    return publicChallengeView(challenge[1], gen);
  }
  if (signingIn || !whoBox.textContent) {
    try {
      await identify();
    } catch (err) {
      whoBox.textContent = "";
      return fail(err);
    }
    if (!current(gen)) return undefined;
  }
  signIn.hidden = true;
  nav.hidden = false;
  const run = location.hash.match(/^#\/runs\/(\d+)$/);
  const name = ["#/services", "#/datasets", "#/challenges"].includes(location.hash) || challenge
    ? location.hash.slice(2).split("/")[0] : "runs";
  for (const link of nav.querySelectorAll("a")) {
    link.classList.toggle("active", link.dataset.view === name);
  }
  if (run) runView(Number(run[1]), gen);
  else if (challenge) challengeView(challenge[1], gen);
  else if (name === "challenges") challengesView(gen);
  else if (name === "services") servicesView(gen);
  else if (name === "datasets") datasetsView(gen);
  else runsView(gen);
}

window.addEventListener("hashchange", () => route());
route();
