// The Status view: GET /web/status, for the accounts and tokens listed in admin; every
// value shown as text in tables. A "bots" section appears only when the answer has one.

import { $, DELAY_MS, authorization, call, clear, gateway, say } from "./api.js";

const statusState = { count: 0, timer: 0 };

export function scheduleStatus() {
  clearTimeout(statusState.timer);
  statusState.timer = setTimeout(loadStatus, DELAY_MS);
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

export async function loadStatus() {
  if (!gateway.capabilities.status) {
    say("status-message", "No admin is configured: list accounts or tokens in "
        + "admin = [...] in the gateway's configuration.");
  }
  if (!authorization()) {
    $("status-body").hidden = true;
    if (gateway.capabilities.status) {
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
