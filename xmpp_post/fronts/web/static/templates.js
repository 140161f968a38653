// The Templates view: a template tried on a payload through POST /templates/NAME/render
// (authenticated like a send; nothing is sent), re-rendered a moment after each change.
// The message is shown as XMPP clients show it (styling.js), the stanza as text.

import {
  $, DELAY_MS, authorization, answerText, call, clear, currentView, recipients, say,
} from "./api.js";
import { renderStyled } from "./styling.js";

let templates = [];
let loadedSample = "";  // the sample last loaded: replaced freely, unlike the user's text
let renderTimer = 0;
let renderSerial = 0;

export async function setupTemplates() {
  const select = $("tpl-name");
  const answer = await call("GET", "/templates", { auth: false });
  templates = (answer.json && answer.json.templates) || [];
  for (const template of templates) {
    const option = document.createElement("option");
    option.value = template.name;
    option.textContent = template.builtin ? template.name : template.name + " (yours)";
    select.append(option);
  }
  select.addEventListener("change", () => templateChosen(true));
  $("tpl-sample").addEventListener("click", loadSample);
  for (const id of ["tpl-payload", "tpl-headers", "tpl-to"]) {
    $(id).addEventListener("input", scheduleRender);
  }
  $("tpl-form").addEventListener("submit", (event) => {
    event.preventDefault();
    render();
  });
  templateChosen(false);
}

function chosenTemplate() {
  return templates.find((template) => template.name === $("tpl-name").value);
}

function templateChosen(render) {
  const template = chosenTemplate();
  $("tpl-description").textContent = template ? template.description : "";
  $("tpl-sample").disabled = !(template && template.sample);
  const payload = $("tpl-payload").value;
  if (payload === "" || payload === loadedSample) loadSample();  // nothing of the user's
  if (render) scheduleRender();
}

function loadSample() {
  const template = chosenTemplate();
  if (!template || !template.sample) return;
  loadedSample = JSON.stringify(template.sample.payload, null, 2);
  $("tpl-payload").value = loadedSample;
  $("tpl-headers").value = Object.entries(template.sample.headers)
    .map(([name, value]) => `${name}: ${value}`).join("\n");
  scheduleRender();
}

export function scheduleRender() {
  clearTimeout(renderTimer);
  renderTimer = setTimeout(render, DELAY_MS);
}

function parseHeaders(text) {
  const headers = new Headers({ "Content-Type": "application/json" });
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const colon = line.indexOf(":");
    if (colon < 1) throw new Error(`header line ${i + 1} is not "Name: value"`);
    try {
      headers.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    } catch {
      throw new Error(`header line ${i + 1} cannot be sent from a browser`);
    }
  }
  return headers;
}

function showRenderError(text) {
  $("tpl-error").textContent = text;
  $("tpl-error-box").hidden = false;
}

async function render() {
  if (currentView() !== "templates") return;
  const template = chosenTemplate();
  if (!template) return;
  if (!authorization()) {
    say("tpl-status", "Type your credentials above: rendering is authenticated like a send.");
    return;
  }
  let headers;
  try {
    headers = parseHeaders($("tpl-headers").value);
  } catch (error) {
    say("tpl-status", "Headers: " + error.message, true);
    return;
  }
  const query = new URLSearchParams();
  for (const jid of recipients($("tpl-to").value)) query.append("to", jid);
  const search = query.toString();
  const path = `/templates/${encodeURIComponent(template.name)}/render`
    + (search ? "?" + search : "");
  const serial = ++renderSerial;
  say("tpl-status", "Rendering…");
  let answer;
  try {
    answer = await call("POST", path, { body: $("tpl-payload").value, headers });
  } catch (error) {
    if (serial === renderSerial) say("tpl-status", "The gateway could not be reached: "
                                     + error.message, true);
    return;
  }
  if (serial !== renderSerial) return;  // a later render is under way
  $("tpl-error-box").hidden = true;
  if (answer.status !== 200 || !answer.json) {
    say("tpl-status", "The template did not render: the answer says why.", true);
    showRenderError(answerText(answer));
    return;
  }
  showRendered(answer.json);
}

function showRendered(result) {
  const message = $("tpl-message");
  const stanzas = $("tpl-stanza");
  clear(message);
  $("tpl-subject").textContent = result.subject || "";
  $("tpl-subject").hidden = !result.subject;
  if (result.skipped) {
    say("tpl-status", "The template sends nothing for this payload (it called skip()).");
    stanzas.textContent = "(nothing is sent)";
    return;
  }
  say("tpl-status", "Rendered; nothing was sent.");
  message.append(renderStyled(result.body || ""));
  stanzas.textContent = result.messages.map((one) => one.stanza !== undefined
    ? one.stanza : `${one.to}: ${one.status} ${one.error}: ${one.message}`).join("\n\n");
}
