// A team's prediction files on a phase's card (SPEC §13): the phase's images to download
// (fetched with the tab's token and handed to the browser as a file: a plain link would
// carry no token), a file to upload with its format, and what came of it — the refusal
// naming its line (422, nothing counted), or the submission followed to its scores with
// its progress while it scores (202).

import { api, download, upload } from "./api.js";
import { button, h, METRIC_LABEL, pct, progress } from "./dom.js";
import { act } from "./page.js";

export const FORMATS = ["recoghub-tsv", "ilsvrc", "isc-matching", "isc-descriptors"];
const STAGES = { search: "queries searched", score: "images scored" };
const FOLLOW_MS = 1000;
const FOLLOW_MAX = 3600; // polls (an hour); the history row goes on showing it after

// By "slug/phase": what came of the phase's last upload, and the file input and format
// chosen. The card is rebuilt as the page polls; these survive that (the same elements
// move to the new card, so a chosen file stays chosen).
const outcomes = new Map();
const inputs = new Map();

const sleep = (msec) => new Promise((resolve) => setTimeout(resolve, msec));
const statusId = (p) => `upload-status-${p.name}`;

/** A file submission's stage and progress, e.g. "2 / 4 images scored", as a list of
 * nodes to spread among others. */
export function scoringProgress(sub) {
  if (!sub.progress) return ["waiting to start"];
  const { stage, done, total } = sub.progress;
  return [progress(done, total), ` ${STAGES[stage] ?? stage}`];
}

function outcomeText(outcome, p) {
  if (outcome.refused) return ["Refused, it does not count: ", outcome.refused];
  const sub = outcome.sub;
  const head = `Submission #${sub.id} (${sub.format})`;
  if (sub.state === "scoring") return [`${head} accepted; scoring: `, ...scoringProgress(sub)];
  if (sub.state === "failed") return `${head} could not be scored: ${sub.error}`;
  if (!sub.scores) return `${head} scored; the phase shows scores once published.`;
  const on = sub.scores.part === "all" ? "all images" : `the ${sub.scores.part} part`;
  return `${head} scored on ${on}: ${METRIC_LABEL[p.metric] ?? p.metric} ${pct(sub.scores[p.metric])}`;
}

function fill(line, outcome, p) {
  line.className = `upload-status ${outcome.refused ? "refused" : outcome.sub.state}`;
  line.replaceChildren(...[outcomeText(outcome, p)].flat());
}

function show(key, p) {
  const line = document.getElementById(statusId(p));
  const outcome = outcomes.get(key);
  if (line && outcome) fill(line, outcome, p);
}

/** Ask for the submission until it is scored (or failed), showing its progress. */
async function follow(key, p, path, id, again) {
  for (let polls = 0; polls < FOLLOW_MAX; polls += 1) {
    await sleep(FOLLOW_MS);
    if (outcomes.get(key)?.sub?.id !== id || !document.getElementById(statusId(p))) return;
    const sub = await api(`${path}/submissions/${id}`).catch(() => null);
    if (!sub) continue;
    outcomes.set(key, { sub });
    show(key, p);
    if (sub.state !== "scoring") {
      again();
      return;
    }
  }
}

async function send(challenge, p, chooser, format, again) {
  const key = `${challenge.slug}/${p.name}`;
  const path = `/challenges/${challenge.slug}/phases/${p.name}`;
  const file = chooser.files[0];
  if (!file) {
    outcomes.set(key, { refused: "choose a prediction file first." });
    show(key, p);
    return;
  }
  const form = new FormData();
  form.append("format", format.value);
  form.append("file", file, file.name);
  try {
    const { body } = await upload(`${path}/submissions`, form);
    outcomes.set(key, { sub: body });
  } catch (err) {
    if (err.code !== "file_rejected") throw err; // the limit, the window: the error box
    outcomes.set(key, { refused: err.message });
    show(key, p);
    return; // nothing counted: nothing else on the page changed
  }
  show(key, p);
  again();
  const made = outcomes.get(key).sub;
  if (made.state === "scoring") follow(key, p, path, made.id, again);
}

/** The phase's images as a zip (fetch + blob: the route needs the token). */
export function imagesButton(challenge, p) {
  const path = `/challenges/${challenge.slug}/phases/${p.name}/images`;
  return button("Download images", (event) => act(event.currentTarget,
    () => download(path, `${challenge.slug}-${p.name}-images.zip`)), "secondary download-images");
}

/** A team's upload form for an open offline or both phase, with the last outcome. */
export function fileForm(challenge, p, again) {
  if (p.state !== "open" || p.kind === "live" || challenge.enrolled === false) return null;
  const key = `${challenge.slug}/${p.name}`;
  if (!inputs.has(key)) {
    inputs.set(key, {
      chooser: h("input", { type: "file", name: "file", "aria-label": "Prediction file" }),
      format: h("select", { name: "format", "aria-label": "Format" },
        FORMATS.map((f) => h("option", { value: f }, f))),
    });
  }
  const { chooser, format } = inputs.get(key);
  const sendButton = button("Upload file", (event) => act(event.currentTarget,
    () => send(challenge, p, chooser, format, again)), "upload");
  const line = h("p", { class: "upload-status", id: statusId(p), role: "status" });
  const form = h("div", { class: "files" },
    h("div", { class: "controls" }, h("span", { class: "label" }, "Submit a prediction file"),
      chooser, format, sendButton, imagesButton(challenge, p)),
    line);
  const outcome = outcomes.get(key);
  if (outcome) fill(line, outcome, p);
  return form;
}
