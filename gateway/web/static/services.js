// Services and their health: every service for the organizer, a team's own for a team,
// each with a Check (the hub pings every instance and sends one probe image).

import { api } from "./api.js";
import { badge, emptyRow, h, head, ms, td, yesNo } from "./dom.js";
import { fail, poll, view, who } from "./page.js";

export function servicesView(gen) {
  const body = h("tbody");
  view.replaceChildren(
    h("section", { class: "card" }, h("h1", {}, who.admin ? "Services" : "Your services"),
      h("p", { class: "note" },
        "Check pings every instance of a service and sends it one probe image."),
      h("table", { id: "services" },
        head("Service", "Team", "Endpoints", "Protocol", "Enabled", "Concurrency", ""), body)),
  );
  poll(gen, 0, () => api("/services"), (services) => {
    body.replaceChildren(
      ...(services.length ? services.flatMap(serviceRows) : [emptyRow(7, "No services yet.")]),
    );
    return false;
  });
}

function serviceRows(s) {
  const result = h("td", { colspan: 7, class: "check-result" });
  const resultRow = h("tr", { class: "check-row", hidden: true }, result);
  const button = h("button", { type: "button" }, "Check");
  button.addEventListener("click", () => check(s, button, resultRow, result));
  const name = [h("strong", {}, s.name), h("div", { class: "sub mono" }, s.guid)];
  const endpoints = s.endpoints.map((url) => h("div", { class: "mono" }, url));
  // The model a model server is asked for (SPEC §11) under the protocol's name.
  const model = (s.protocol_options || {}).model;
  const protocol = [h("div", {}, s.protocol),
    model ? h("div", { class: "sub mono" }, model) : null];
  return [h("tr", { "data-service": s.guid }, td(name), td(s.provider_name), td(endpoints),
    td(protocol), td(s.enabled ? "yes" : "no"), td(s.max_concurrency, "num"), td(button)),
    resultRow];
}

async function check(s, button, row, cell) {
  button.disabled = true;
  button.textContent = "Checking…";
  row.hidden = false;
  cell.replaceChildren(h("span", { class: "note" }, "Checking every instance…"));
  try {
    const result = await api(`/services/${encodeURIComponent(s.guid)}/check`, "POST");
    cell.replaceChildren(...checkReport(result));
  } catch (err) {
    if (err.status === 401) return fail(err);
    cell.replaceChildren(h("span", { class: "reason" }, `${err.message} (${err.code})`));
  } finally {
    button.disabled = false;
    button.textContent = "Check";
  }
  return undefined;
}

function checkReport(result) {
  return [
    h("p", { class: "verdict" }, badge(result.ok ? "passed" : "failed"),
      result.ok ? " every instance is reachable and answers well" : " some instance failed"),
    h("table", { class: "instances" },
      head("Instance", "Reachable", "Ping ms", "Format ok", "Outcome", "Probe ms", "Detail"),
      h("tbody", {}, result.instances.map((i) => h("tr", {},
        td(i.instance, "mono"), td(yesNo(i.reachable)), td(ms(i.ping_ms), "num"),
        td(yesNo(i.format_ok)), td(i.outcome), td(ms(i.latency_ms), "num"), td(i.detail))))),
  ];
}
