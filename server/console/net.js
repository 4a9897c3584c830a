// Talking to the server: requests and their errors, one answer per view, the checks of typed fields.

import { state } from "./state.js";
import { $, el } from "./dom.js";
import { setStatus, dismissNotice } from "./status.js";

// ---- talking to the server --------------------------------------------------------------------------
export class ApiError extends Error {
  constructor(code, status, message) { super(message); this.code = code; this.status = status; }
}

// What the console finds wrong on its own (no seed picked, k of 0, a request the browser will not build):
// nothing was sent, so none of the server's hints (retrying, tokens, no bundle) apply to it.
export class LocalError extends Error {
  constructor(title, message) { super(message); this.status = title; }
}

// Server tokens are printable ASCII (gRPC metadata carries nothing else: server/_cli_serve.py), and a browser
// cannot even put a character outside ISO-8859-1 in a header: such a token is refused when it is entered, saying
// why, rather than failing every call as "server unreachable". The message never echoes the token.
export function tokenProblem(token) {
  const bad = [...token].findIndex((c) => c < " " || c > "~");
  return bad < 0 ? "" : `character ${bad + 1} of the token is not printable ASCII, and bearer tokens always are`;
}

export async function request(path, options = {}) {
  const headers = { "Content-Type": "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  let outgoing;
  try {
    // Built apart from fetch(): a header the browser refuses throws a TypeError here, before anything is sent,
    // and that is no sign of the server being down (fetch() throws TypeErrors for both).
    outgoing = new Request(path, { ...options, headers });
  } catch (e) {
    throw new LocalError("Not sent", `the browser would not build this request (${e.message}); check the token at the top`);
  }
  let response;
  try {
    response = await fetch(outgoing);
  } catch (e) {
    setStatus("down");
    throw new ApiError(0, "UNREACHABLE", "the server did not answer: it is down or the network is gone");
  }
  const text = await response.text();
  let data = null;
  try { data = JSON.parse(text); } catch (e) { /* not JSON: an HTML page or a proxy's error */ }
  if (!response.ok) {
    const err = (data && data.error) || { code: response.status, status: `HTTP ${response.status}`, message: text.slice(0, 300) };
    if (response.status === 401) setStatus("auth");
    else if (response.status === 503) setStatus("nobundle", err.message);
    throw new ApiError(err.code, err.status, err.message);
  }
  return { data, text };
}

export const rpc = async (method, body = {}) => (await request(`/v1/${method}`, { method: "POST", body: JSON.stringify(body) })).data;
export const api = async (path) => (await request(path)).data;

export function errorHint(err) {
  if (err instanceof LocalError) return "";
  if (err.code === 401) {
    return state.token ? "The token was refused: check it in the box at the top." :
      "This server needs a bearer token: enter it in the box at the top.";
  }
  if (err.code === 503) return "No bundle is loaded yet (the server is starting, or loading one): the console retries on its own.";
  if (err.code === 0) return "The console keeps trying every few seconds; what is on screen may be stale.";
  return "";
}

export function errorTitle(err) {
  if (err instanceof LocalError) return err.status;
  if (err.code === 401) return "Authentication failed (HTTP 401 UNAUTHENTICATED)";
  if (err.code === 403) return "Not allowed (HTTP 403 PERMISSION_DENIED)";
  return `${err.status || "error"}${err.code > 0 ? ` (HTTP ${err.code})` : ""}`;
}

export function showError(box, err) {
  const node = $(box);
  if (!err) { node.hidden = true; node.replaceChildren(); delete node.dataset.code; return; }
  const hint = errorHint(err);
  // only the parts there are: replaceChildren() would print a null as the text "null"
  node.replaceChildren(...[el("b", { textContent: errorTitle(err) }), el("span", { textContent: err.message }),
    hint ? el("div", { textContent: hint }) : null].filter(Boolean));
  node.dataset.code = err instanceof LocalError ? "local" : String(err.code);
  node.hidden = false;
}

// Anything else thrown is a bug in the console: logged, and shown as what it is.
export function asShown(err) {
  if (err instanceof ApiError || err instanceof LocalError) return err;
  console.error(err);
  return new LocalError("Console error", String(err));
}

export async function guarded(box, fn) {
  showError(box, null);
  try { await fn(); } catch (err) { showError(box, asShown(err)); }
}

// ---- one answer per view ------------------------------------------------------------------------------
// A view shows the answer to its latest request only: an older, slower answer (k=1000 asked before k=3)
// arriving last must not replace the newer one, nor its error. Each newTicket() voids the view's earlier ones.
export const tickets = {};
export function newTicket(view) {
  const mine = (tickets[view] || 0) + 1;
  tickets[view] = mine;
  return () => tickets[view] === mine;
}

// Runs fn(current) for `view`; fn checks current() after each await. A failure clears the view first, so an
// error never sits above the previous request's table as if that table were this request's answer.
export async function runLatest(view, box, clear, fn) {
  const current = newTicket(view);
  dismissNotice();  // asking the new bundle something is as good as reading the switch notice
  showError(box, null);
  try { await fn(current); } catch (err) {
    if (!current()) return;
    clear();
    showError(box, asShown(err));
  }
}

// A whole-number field: blank means its default (the placeholder says which); anything else must be a whole
// number from `low` up. 0 for k used to become 10 without a word.
// A number box's value: undefined when blank, else the number typed, else a LocalError naming `label` (a box of
// type number reads "" for what it cannot parse, such as "1e999" or "-", which was left out of the call unsaid)
export function numberInput(input, label) {
  const text = input.value.trim();
  if (text === "" && !input.validity.badInput) return undefined;
  const value = Number(text);
  if (text !== "" && Number.isFinite(value)) return value;
  throw new LocalError(`Check ${label}`, `${label}: ${text ? `'${text}'` : "what is typed"} is not a number`);
}

export function wholeField(id, label, fallback, low = 0) {
  const input = $(id);
  const text = input.value.trim();
  if (text === "" && !input.validity.badInput) return fallback;
  if (/^\d+$/.test(text) && Number(text) >= low) return Number(text);
  throw new LocalError(`Check ${label}`, `${label}: ${text ? `'${text}'` : "what is typed"} is not a whole number ` +
    `${low ? `from ${low} up` : "(0 or more)"}; leave it blank for the default, ${fallback}`);
}
