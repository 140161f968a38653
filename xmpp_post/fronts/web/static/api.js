// What every view shares: the credentials typed into the page (in this module's memory
// only: no storage, no cookies), the one way to call the gateway's API (they leave only
// in its Authorization header), what the gateway supports, and small DOM helpers that
// write text, never HTML.

export const DELAY_MS = 300;  // after the last keystroke, before a request
export const credentials = { kind: "password", jid: "", password: "", token: "" };
export const gateway = {
  capabilities: { base_path: "/msg", types: [], send: {}, status: false },
};

export const $ = (id) => document.getElementById(id);

export function authorization() {
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
export async function call(method, path, { body, headers, auth = true } = {}) {
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

export function answerText(answer) {
  const shown = answer.json !== null ? JSON.stringify(answer.json, null, 2) : answer.text;
  return `${answer.status} ${answer.statusText}\n${shown}`;
}

export function say(id, text, isError = false) {
  const element = $(id);
  element.textContent = text;
  element.classList.toggle("error", isError);
}

export function clear(element) {
  element.replaceChildren();
}

export function recipients(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}

export const VIEWS = ["send", "templates", "status"];

export function currentView() {
  const asked = location.hash.slice(1);
  return VIEWS.includes(asked) ? asked : "send";
}
