// What every view shares: the view container, the error box, who is signed in, and the
// navigation generation that stops the polls of a view once it is left.

import { ApiError, TOKEN_KEY } from "./api.js";
import { h } from "./dom.js";

export const view = document.getElementById("view");
const errorBox = document.getElementById("error");

/** Who holds the token: { admin: true } or { admin: false, provider: {guid, name} }. */
export const who = { admin: false, provider: null };

let generation = 0; // bumped by every navigation: a poll of an older view stops
let signOut = () => {};

/** Start a new view; answers its generation, for `poll` and `current`. */
export const nextGeneration = () => ++generation;
export const current = (gen) => gen === generation;
export const onSignOut = (handler) => { signOut = handler; };

export function showError(err) {
  errorBox.hidden = false;
  errorBox.replaceChildren(h("strong", {}, err.status ? `Error ${err.status}: ` : "Error: "),
    err.message, err.code ? h("span", { class: "code" }, ` (${err.code})`) : null);
}
export const clearError = () => { errorBox.hidden = true; };

/** Show an error as the hub words it; a rejected token (401) also sends the person back
 * to sign in. */
export function fail(err) {
  const error = err instanceof ApiError ? err : new ApiError(0, String(err), "");
  if (error.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    signOut();
  }
  showError(error);
}

/** Run an action a person asked for (a button): errors shown, the button busy meanwhile. */
export async function act(trigger, action) {
  clearError();
  if (trigger) trigger.disabled = true;
  try {
    return await action();
  } catch (err) {
    fail(err);
    return undefined;
  } finally {
    if (trigger) trigger.disabled = false;
  }
}

const sleep = (msec) => new Promise((resolve) => setTimeout(resolve, msec));

/** load() then render(data) until render answers false or the view is left. */
export async function poll(gen, everyMs, load, render) {
  while (current(gen)) {
    let data;
    try {
      data = await load();
    } catch (err) {
      if (current(gen)) fail(err);
      return;
    }
    // `render` may be async (a view that loads more per item): its answer is awaited.
    if (!current(gen) || !(await render(data))) return;
    await sleep(everyMs);
  }
}
