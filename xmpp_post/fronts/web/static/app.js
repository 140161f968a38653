// The xmpp-post web page: send a message, try a template, see the gateway's state.
//
// Credentials typed into the page live in memory only (api.js) and leave only in the
// Authorization header of the gateway's own API. Every value from the server is written
// as text (textContent, text nodes), never as HTML.

import {
  $, VIEWS, answerText, authorization, call, credentials, currentView, gateway, recipients,
  say,
} from "./api.js";
import { loadStatus, scheduleStatus } from "./status.js";
import { scheduleRender, setupTemplates } from "./templates.js";

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
  for (const name of gateway.capabilities.types) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name;
    type.append(option);
  }
  $("send-files-field").hidden = !gateway.capabilities.send.files;
  $("send-encrypt-field").hidden = !gateway.capabilities.send.encrypt;
  $("send-form").addEventListener("submit", send);
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
  if (gateway.capabilities.send.encrypt && $("send-encrypt").value) {
    fields.encrypt = $("send-encrypt").value;
  }
  const files = gateway.capabilities.send.files ? Array.from($("send-files").files) : [];
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
    const answer = await call("POST", gateway.capabilities.base_path, { body, headers });
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

// ---- Start -------------------------------------------------------------------------

async function start() {
  setupCredentials();
  try {
    const answer = await call("GET", "/web/capabilities", { auth: false });
    if (answer.json) gateway.capabilities = answer.json;
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

