// Starting a run from the page. The organizer picks everything (SPEC §3 POST /runs); a
// team starts a dry run of its own services on a dataset open to teams, within its quota,
// with the organizer's settings. Optional fields are sent only when filled.

import { api } from "./api.js";
import { h, METRICS, teamLabel } from "./dom.js";
import { act, fail, who } from "./page.js";

const field = (label, input, note) =>
  h("label", { class: "field" }, h("span", {}, label), input, note && h("small", {}, note));

/** A datetime-local value (the reader's local time) as ISO 8601 UTC; null when empty. */
const utc = (value) => (value ? new Date(value).toISOString() : null);

export function startForm() {
  const dataset = h("select", { name: "dataset", required: true });
  const metric = h("select", { name: "metric" }, h("option", { value: "" }, "hub default (top5)"),
    METRICS.map(([key, label]) => h("option", { value: key }, label)));
  const services = h("div", { class: "choices", id: "start-services" });
  const fields = [field("Dataset", dataset), field("Primary metric", metric)];
  let phase = null;
  let concurrency = null;
  let startAt = null;
  let deadline = null;
  if (who.admin) {
    phase = h("select", { name: "phase" },
      h("option", { value: "dryrun" }, "dry run"), h("option", { value: "evaluation" }, "evaluation"));
    concurrency = h("input", { name: "concurrency", type: "number", min: 1, max: 1024,
      placeholder: "per service" });
    startAt = h("input", { name: "start_at", type: "datetime-local", step: 1 });
    deadline = h("input", { name: "deadline", type: "datetime-local", step: 1 });
    fields.splice(1, 0, field("Phase", phase));
    fields.push(field("Concurrency", concurrency, "in flight per service; empty: each service's own"),
      field("Start at", startAt, "your local time; empty: now"),
      field("Deadline", deadline, "answers missing then count as missed"));
  }
  const submit = h("button", { type: "submit" }, who.admin ? "Start run" : "Start dry run");
  const form = h("form", { id: "start-run", class: "start" },
    h("div", { class: "fields" }, fields),
    h("fieldset", {}, h("legend", {}, "Services (none ticked: every enabled one)"), services),
    submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = { dataset: Number(dataset.value), phase: phase?.value ?? "dryrun" };
    const ticked = [...services.querySelectorAll("input:checked")].map((box) => box.value);
    if (ticked.length) body.services = ticked;
    if (metric.value) body.metric = metric.value;
    if (concurrency?.value) body.concurrency = Number(concurrency.value);
    if (utc(startAt?.value)) body.start_at = utc(startAt.value);
    if (utc(deadline?.value)) body.deadline = utc(deadline.value);
    act(submit, async () => {
      const run = await api("/runs", "POST", body);
      location.hash = `#/runs/${run.id}`;
    });
  });
  fill(dataset, services, submit);
  const title = who.admin ? "Start a run" : "Start a dry run";
  const note = who.admin ? null : h("p", { class: "note" },
    "A dry run of your own services on a dataset the organizer opened to teams; ",
    "the hub allows a few a day per team.");
  return h("section", { class: "card" }, h("h2", {}, title), note, form);
}

async function fill(dataset, services, submit) {
  let datasets;
  let found;
  try {
    [datasets, found] = await Promise.all([api("/datasets"), api("/services")]);
  } catch (err) {
    return fail(err);
  }
  dataset.replaceChildren(...datasets.map((d) =>
    h("option", { value: d.id }, `${d.name} (${d.images} images)`)));
  if (!datasets.length) {
    submit.disabled = true;
    dataset.append(h("option", { value: "" },
      who.admin ? "no dataset yet: import one" : "no dataset is open to team dry runs"));
  }
  services.replaceChildren(...found.map((s) => h("label", { class: "choice" },
    h("input", { type: "checkbox", value: s.guid, disabled: !s.enabled }),
    teamLabel({ provider_name: s.provider_name, service_name: s.name }),
    s.enabled ? null : " (disabled)")));
  return undefined;
}
