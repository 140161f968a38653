// The xmpp-post web page: send a message, try a template, see the gateway's state.
//
// Credentials typed into the page live in this module's memory only (no storage, no
// cookies) and leave only in the Authorization header of the gateway's own API. Every
// value from the server is written as text (textContent, text nodes), never as HTML.

import { renderStyled } from "./styling.js";

const RENDER_DELAY_MS = 300;
const credentials = { kind: "password", jid: "", password: "", token: "" };
let capabilities = { base_path: "/msg", types: [], send: {}, status: false };
let templates = [];
let loadedSample = "";
let renderTimer = 0;
let renderSerial = 0;
const statusState = { count: 0, timer: 0 };

const $ = (id) => document.getElementById(id);

function authorization() {
  if (credentials.kind === "token") {
    const token = credentials.token.trim();
    return token ? "Bearer " + token : null;
  }
  const jid = credentials.jid.trim();
  if (!jid || !credentials.password) return null;
  let binary = "";
  for (const byte of new TextEncoder().encode(jid + ":" + credentials.password)) {
    binary += String.fromCharCode(byte);
  }
  return "Basic " + btoa(binary);
}

// One request to the gateway's API: {status, statusText, text, json}.
async function call(method, path, { body, headers, auth = true } = {}) {
  const sent = new Headers(headers || {});
  const value = auth ? authorization() : null;
  if (value) sent.set("Authorization", value);
  const response = await fetch(path, {
    method, body, headers: sent, credentials: "omit", cache: "no-store", redirect: "error",
  });
  const text = await response.text();
  let json = null;
  try { json = JSON.parse(text); } catch { json = null; }
  return { status: response.status, statusText: response.statusText, text, json };
}

function answerText(answer) {
  const shown = answer.json !== null ? JSON.stringify(answer.json, null, 2) : answer.text;
  return `${answer.status} ${answer.statusText}\n${shown}`;
}

function say(id, text, isError = false) {
  const element = $(id);
  element.textContent = text;
  element.classList.toggle("error", isError);
}

function clear(element) {
  element.replaceChildren();
}

// ---- Credentials -------------------------------------------------------------------

function setupCredentials() {
  for (const radio of document.querySelectorAll("input[name=auth-kind]")) {
    radio.addEventListener("change", () => {
      credentials.kind = radio.value;
      $("password-fields").hidden = radio.value !== "password";
      $("token-fields").hidden = radio.value !== "token";
      credentialsChanged();
    });
  }
  for (const id of ["jid", "password", "token"]) {
    $(id).addEventListener("input", () => {
      credentials[id] = $(id).value;
      credentialsChanged();
    });
  }
  $("credentials-form").addEventListener("submit", (event) => event.preventDefault());
  $("forget").addEventListener("click", () => {
    for (const id of ["jid", "password", "token"]) {
      $(id).value = "";
      credentials[id] = "";
    }
    credentialsChanged();
  });
}

function credentialsChanged() {
  scheduleRender();
  if (currentView() === "status") scheduleStatus();
}

// ---- Views -------------------------------------------------------------------------

const VIEWS = ["send", "templates", "status"];

function currentView() {
  const asked = location.hash.slice(1);
  return VIEWS.includes(asked) ? asked : "send";
}

function showView(moveFocus) {
  const view = currentView();
  for (const name of VIEWS) {
    $("view-" + name).hidden = name !== view;
    const link = $("tab-" + name);
    if (name === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (moveFocus) $(view + "-title").focus();
  if (view === "templates") scheduleRender();
  if (view === "status") loadStatus();
}

// ---- Send --------------------------------------------------------------------------

function setupSend() {
  const type = $("send-type");
  for (const name of capabilities.types) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name;
    type.append(option);
  }
  $("send-files-field").hidden = !capabilities.send.files;
  $("send-encrypt-field").hidden = !capabilities.send.encrypt;
  $("send-form").addEventListener("submit", send);
}

function recipients(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}

async function send(event) {
  event.preventDefault();
  const to = recipients($("send-to").value);
  if (!to.length) {
    say("send-status", "Name at least one recipient.", true);
    $("send-to").focus();
    return;
  }
  if (!authorization()) {
    say("send-status", "Type your credentials first (Credentials, above).", true);
    return;
  }
  const fields = { body: $("send-body").value };
  if ($("send-subject").value) fields.subject = $("send-subject").value;
  if ($("send-type").value) fields.type = $("send-type").value;
  if (capabilities.send.encrypt && $("send-encrypt").value) {
    fields.encrypt = $("send-encrypt").value;
  }
  const files = capabilities.send.files ? Array.from($("send-files").files) : [];
  let body;
  let headers = {};
  if (files.length) {  // multipart: the browser writes its Content-Type and boundary
    body = new FormData();
    for (const jid of to) body.append("to", jid);
    for (const [name, value] of Object.entries(fields)) {
      if (name !== "body" || value) body.append(name, value);
    }
    for (const file of files) body.append("file", file, file.name);
  } else {
    body = JSON.stringify({ to: to.length === 1 ? to[0] : to, ...fields });
    headers = { "Content-Type": "application/json" };
  }
  say("send-status", "Sending…");
  $("send-button").disabled = true;
  try {
    const answer = await call("POST", capabilities.base_path, { body, headers });
    const ok = answer.status >= 200 && answer.status < 300;
    say("send-status", ok ? "The XMPP server has the message." : "Not sent, or not to every "
        + "recipient: the answer says why.", !ok);
    $("send-answer").textContent = answerText(answer);
  } catch (error) {
    say("send-status", "The gateway could not be reached: " + error.message, true);
  } finally {
    $("send-button").disabled = false;
  }
}

// ---- Templates ---------------------------------------------------------------------

async function setupTemplates() {
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

function scheduleRender() {
  clearTimeout(renderTimer);
  renderTimer = setTimeout(render, RENDER_DELAY_MS);
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

// ---- Status ------------------------------------------------------------------------

function scheduleStatus() {
  clearTimeout(statusState.timer);
  statusState.timer = setTimeout(loadStatus, RENDER_DELAY_MS);
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const value of cells) {
    const td = document.createElement("td");
    td.textContent = String(value);
    tr.append(td);
  }
  return tr;
}

function fillTable(id, rows, empty) {
  const body = $(id).querySelector("tbody");
  clear(body);
  for (const cells of rows) body.append(row(cells));
  if (!rows.length) {
    const tr = row([empty]);
    tr.firstChild.colSpan = $(id).querySelectorAll("th").length;
    body.append(tr);
  }
}

function seconds(value) {
  if (value < 90) return `${Math.round(value)} s`;
  if (value < 5400) return `${Math.round(value / 60)} min`;
  return `${(value / 3600).toFixed(1)} h`;
}

async function loadStatus() {
  if (!capabilities.status) {
    say("status-message", "No admin is configured: list accounts or tokens in "
        + "admin = [...] in the gateway's configuration.");
  }
  if (!authorization()) {
    $("status-body").hidden = true;
    if (capabilities.status) {
      say("status-message", "Type the credentials of an admin above (an account or token "
          + "listed in admin).");
    }
    return;
  }
  const serial = ++statusState.count;
  let answer;
  try {
    answer = await call("GET", "/web/status");
  } catch (error) {
    say("status-message", "The gateway could not be reached: " + error.message, true);
    return;
  }
  if (serial !== statusState.count) return;
  if (answer.status !== 200 || !answer.json) {
    $("status-body").hidden = true;
    const why = answer.json ? `${answer.json.error}: ${answer.json.message}` : answer.text;
    say("status-message", `${answer.status} ${answer.statusText} — ${why}`, true);
    return;
  }
  showStatus(answer.json);
}

function showStatus(state) {
  const sessions = state.sessions;
  say("status-message", `As of ${new Date().toLocaleTimeString()}.`);
  $("status-sessions-summary").textContent = `${sessions.open} open of at most ${sessions.max}.`;
  fillTable("status-sessions", sessions.list.map((one) =>
    [one.jid, one.in_flight, seconds(one.age_seconds), seconds(one.idle_seconds)]),
  "No session is open.");
  const bots = Array.isArray(state.bots);
  $("status-bots").hidden = !bots;
  if (bots) {
    fillTable("status-bots-table", state.bots.map((bot) => [bot.name, bot.queued]),
      "No bot is configured.");
  }
  const refusals = state.refusals;
  $("refusals-window").textContent = seconds(refusals.window_seconds);
  const codes = Object.keys(refusals.since_start);
  fillTable("status-refusals", codes.map((code) =>
    [code, refusals.recent[code] || 0, refusals.since_start[code]]), "No refusal yet.");
  fillTable("status-errors", state.errors.slice().reverse().map((one) =>
    [one.time, one.level, one.message]), "Nothing logged.");
  $("status-body").hidden = false;
}

// ---- Start -------------------------------------------------------------------------

async function start() {
  setupCredentials();
  try {
    const answer = await call("GET", "/web/capabilities", { auth: false });
    if (answer.json) capabilities = answer.json;
  } catch {
    // keep the defaults: the page still works against the usual base path
  }
  setupSend();
  $("status-refresh").addEventListener("click", loadStatus);
  await setupTemplates();
  window.addEventListener("hashchange", () => showView(true));
  showView(false);
  document.body.dataset.ready = "true";
}

start();
