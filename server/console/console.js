// musicrec web console: plain JavaScript over the server's HTTP/JSON face (POST /v1/<Method>, the proto's
// own messages) and the console's few endpoints under /console/api/. No build step, nothing fetched from
// elsewhere. window.consoleState exposes what is on screen (the browser tests read it).
"use strict";

const state = {
  token: sessionStorage.getItem("musicrec-token") || "",
  info: null,            // ServerInfoResponse
  version: null,         // the bundle version the page was drawn from
  moods: [],             // Mood messages
  seeds: [],             // {track, negative}
  plSeed: null, clTrack: null,
  map: null,             // {data, drawnByMood, highlight, scale}
  lastSimilar: null, lastPlaylist: null, lastClassify: null,
  status: "starting", statusDetail: "",
  notice: null,          // the bundle-switch notice, shown until dismissed
  viewsLoaded: false,    // moods, filters, report drawn for state.version (false: redraw at the next poll)
};
window.consoleState = state;

const $ = (sel) => document.querySelector(sel);
const selected = (sel) => [...$(sel).selectedOptions].map((o) => o.value);
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "style") node.setAttribute("style", v);
    else node[k] = v;
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
};

// The report's colours (engine/_htmlreport.py mood_colours): golden-angle hues, alternating lightness.
const moodColour = (i) => `hsl(${(i * 137.508) % 360}, 65%, ${i % 2 ? 42 : 55}%)`;
const KEYS = ["C", "C♯", "D", "D♯", "E", "F", "F♯", "G", "G♯", "A", "A♯", "B"];

// ---- talking to the server --------------------------------------------------------------------------
class ApiError extends Error {
  constructor(code, status, message) { super(message); this.code = code; this.status = status; }
}

// What the console finds wrong on its own (no seed picked, k of 0, a request the browser will not build):
// nothing was sent, so none of the server's hints (retrying, tokens, no bundle) apply to it.
class LocalError extends Error {
  constructor(title, message) { super(message); this.status = title; }
}

// Server tokens are printable ASCII (gRPC metadata carries nothing else: server/_cli_serve.py), and a browser
// cannot even put a character outside ISO-8859-1 in a header: such a token is refused when it is entered, saying
// why, rather than failing every call as "server unreachable". The message never echoes the token.
function tokenProblem(token) {
  const bad = [...token].findIndex((c) => c < " " || c > "~");
  return bad < 0 ? "" : `character ${bad + 1} of the token is not printable ASCII, and bearer tokens always are`;
}

async function request(path, options = {}) {
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

const rpc = async (method, body = {}) => (await request(`/v1/${method}`, { method: "POST", body: JSON.stringify(body) })).data;
const api = async (path) => (await request(path)).data;

function errorHint(err) {
  if (err instanceof LocalError) return "";
  if (err.code === 401) {
    return state.token ? "The token was refused: check it in the box at the top." :
      "This server needs a bearer token: enter it in the box at the top.";
  }
  if (err.code === 503) return "No bundle is loaded yet (the server is starting, or loading one): the console retries on its own.";
  if (err.code === 0) return "The console keeps trying every few seconds; what is on screen may be stale.";
  return "";
}

function errorTitle(err) {
  if (err instanceof LocalError) return err.status;
  if (err.code === 401) return "Authentication failed (HTTP 401 UNAUTHENTICATED)";
  if (err.code === 403) return "Not allowed (HTTP 403 PERMISSION_DENIED)";
  return `${err.status || "error"}${err.code > 0 ? ` (HTTP ${err.code})` : ""}`;
}

function showError(box, err) {
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
function asShown(err) {
  if (err instanceof ApiError || err instanceof LocalError) return err;
  console.error(err);
  return new LocalError("Console error", String(err));
}

async function guarded(box, fn) {
  showError(box, null);
  try { await fn(); } catch (err) { showError(box, asShown(err)); }
}

// ---- one answer per view ------------------------------------------------------------------------------
// A view shows the answer to its latest request only: an older, slower answer (k=1000 asked before k=3)
// arriving last must not replace the newer one, nor its error. Each newTicket() voids the view's earlier ones.
const tickets = {};
function newTicket(view) {
  const mine = (tickets[view] || 0) + 1;
  tickets[view] = mine;
  return () => tickets[view] === mine;
}

// Runs fn(current) for `view`; fn checks current() after each await. A failure clears the view first, so an
// error never sits above the previous request's table as if that table were this request's answer.
async function runLatest(view, box, clear, fn) {
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
function wholeField(id, label, fallback, low = 0) {
  const input = $(id);
  const text = input.value.trim();
  if (text === "" && !input.validity.badInput) return fallback;
  if (/^\d+$/.test(text) && Number(text) >= low) return Number(text);
  throw new LocalError(`Check ${label}`, `${label}: ${text ? `'${text}'` : "what is typed"} is not a whole number ` +
    `${low ? `from ${low} up` : "(0 or more)"}; leave it blank for the default, ${fallback}`);
}

// ---- status, reloads and outages --------------------------------------------------------------------
function setStatus(kind, detail = "") {
  state.status = kind;
  state.statusDetail = detail;
  const node = $("#status");
  node.dataset.state = kind;
  if (kind === "ok") {
    const i = state.info;
    node.textContent = `bundle ${i.bundle_version} · ${Number(i.tracks).toLocaleString()} tracks · ${i.moods} moods · ` +
      `${i.genres} genres · ${i.index_kind} index`;
  } else {
    node.textContent = { down: "server unreachable", nobundle: "no bundle loaded", auth: "token needed" }[kind] || kind;
  }
  renderBanner();
}

// The server's trouble while there is some; else the notice of a bundle switch, if the user has not dismissed it.
function bannerMessage() {
  switch (state.status) {
    case "down": return { kind: "bad", text: "The server is not answering (down, restarting or unreachable). Retrying every 5 s; " +
      "what is on screen may be stale." };
    case "nobundle": return { kind: "warn", text: `The server has no bundle loaded yet (starting or loading one): ${state.statusDetail} Retrying every 5 s.` };
    case "auth": return { kind: "bad", text: state.token ? "The server refused this token (401). Enter another at the top right." :
      "This server requires a bearer token (401). Enter it at the top right." };
    default: return state.notice ? { kind: "warn", text: state.notice, dismissable: true } : null;
  }
}

// Drawn from the state on every status change: the 5-second poll redraws it, and the switch notice survives
// that (it used to vanish at the next poll while the old bundle's results stayed on screen).
function renderBanner() {
  const banner = $("#banner");
  const message = bannerMessage();
  banner.hidden = !message;
  if (!message) { banner.replaceChildren(); return; }
  if (banner.dataset.kind === message.kind && banner.firstChild && banner.firstChild.textContent === message.text) return;  // as it is
  banner.dataset.kind = message.kind;
  banner.replaceChildren(el("span", { textContent: message.text }), message.dismissable ?
    el("button", { type: "button", class: "small", id: "banner-dismiss", textContent: "Dismiss", onclick: dismissNotice }) : "");
}

function dismissNotice() {
  if (!state.notice) return;
  state.notice = null;
  renderBanner();
}

async function refreshInfo() {
  try {
    const info = await rpc("ServerInfo");
    const previous = state.version;
    state.info = info;
    setStatus("ok");
    if (previous !== info.bundle_version || !state.viewsLoaded) {
      const switched = previous !== null && previous !== info.bundle_version;
      state.version = info.bundle_version;
      state.viewsLoaded = false;
      if (switched) {
        forgetOldBundle();
        state.notice = `The server switched bundles (reloaded): ${previous} → ${info.bundle_version}. Seeds, picked tracks ` +
          "and results from the old bundle were cleared, and mood choices reset (mood numbers differ between bundles).";
        renderBanner();
      }
      const droppedGenres = await loadBundleViews();
      state.viewsLoaded = true;
      if (switched && droppedGenres.length && state.notice) {
        state.notice += ` Genre filters the new bundle lacks were dropped: ${droppedGenres.join(", ")}.`;
        renderBanner();
      }
    }
  } catch (err) { /* the status line and banner already say what happened */ }
}

// What came from the old bundle goes: its track ids and mood numbers may be missing from the new one, or name
// other tracks and moods there (a query with them failed NOT_FOUND). Answers still coming from it are dropped.
function forgetOldBundle() {
  for (const view of ["similar", "playlist", "classify", "classify-pick"]) newTicket(view);
  state.seeds = []; renderSeeds(); clearSimilar();
  state.plSeed = null; $("#pl-seed").textContent = "no seed picked"; clearPlaylist();
  state.clTrack = null; $("#cl-track").textContent = "no track picked"; clearClassify();
  for (const box of ["#similar-error", "#playlist-error", "#classify-error", "#map-error"]) showError(box, null);
  for (const sel of ["#pl-mood", "#f-moods"]) $(sel).selectedIndex = -1;  // the new bundle's mood 3 is another mood
}

// Returns the selected genre filters the bundle no longer has (dropped from the selection).
async function loadBundleViews() {
  const moods = await rpc("ListMoods");
  state.moods = moods.moods;
  state.bundle = await api("/console/api/bundle");
  fillMoodSelects();
  const droppedGenres = fillFilters();
  $("#opt-gw-default-value").textContent = `(${Number(state.info.default_genre_weight).toFixed(2)})`;
  if ($("#opt-gw-default").checked) $("#opt-gw").value = state.info.default_genre_weight;  // not a weight the user set
  clearMap();
  if ($("#tab-map").classList.contains("active")) loadMap();
  $("#report-text").textContent = state.bundle.report;
  $("#report-pictures").disabled = !state.bundle.report_html;
  $("#report-pictures").title = state.bundle.report_html ? "" : "the server has no matplotlib (pip install 'musicrec[report]')";
  $("#report-frame").hidden = true;
  buildFeatureForm();
  return droppedGenres;
}

// Refills a <select> with `options`, keeping the choices whose value it still offers (they used to be cleared
// whenever the views were drawn again); returns the chosen values it no longer offers.
function refill(sel, options) {
  const chosen = selected(sel);
  for (const o of options) o.selected = chosen.includes(o.value);
  $(sel).replaceChildren(...options);
  return chosen.filter((v) => !options.some((o) => o.value === v));
}

function fillMoodSelects() {
  const options = () => state.moods.map((m) => el("option", { value: m.mood_id, textContent: `${m.mood_id} · ${m.name} (${m.size})` }));
  refill("#pl-mood", options());
  refill("#f-moods", options());
}

function fillFilters() {
  const opts = () => state.bundle.genres.map((g) => el("option", { value: g, textContent: g }));
  return [...new Set([...refill("#f-include", opts()), ...refill("#f-exclude", opts())])];
}

// ---- tabs -------------------------------------------------------------------------------------------
function openTab(name) {
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const s of document.querySelectorAll(".tab")) s.classList.toggle("active", s.id === `tab-${name}`);
  // a drawn map is drawn again: the window may have been resized while the tab was hidden
  if (name === "map") { if (state.map) drawMap(); else loadMap(); }
}

// ---- track search (shared by three tabs) --------------------------------------------------------------
// Names are isolated (<bdi>) from the text around them: a right-to-left name, or one holding U+202E, must not
// reorder the "—", the other artists or the × button beside it.
const bdi = (text) => el("bdi", { textContent: text });
const nameList = (names) => (names || []).flatMap((n, i) => (i ? [", ", bdi(n)] : [bdi(n)]));
function trackLabel(t) { return [bdi(t.name), " — ", ...nameList(t.artists)]; }

function searchBox(input, list, onPick) {
  let timer = null, seq = 0;
  $(input).addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = $(input).value.trim();
      const mine = ++seq;
      if (!q) { $(list).replaceChildren(); return; }
      try {
        const found = await api(`/console/api/search?q=${encodeURIComponent(q)}&limit=12`);
        if (mine !== seq) return;
        $(list).replaceChildren(...found.tracks.map((t) => el("li", {
          dataset: { id: t.track_id }, onclick: () => { onPick(t); $(list).replaceChildren(); $(input).value = ""; },
        }, bdi(t.name), " ", el("small", {}, nameList(t.artists), " · ", nameList(t.genres)))),
        found.total > found.tracks.length ? el("li", { class: "muted", textContent: `… ${found.total - found.tracks.length} more: type more words` }) : "",
        found.total === 0 ? el("li", { class: "muted", textContent: "no track matches every word" }) : "");
      } catch (err) {
        if (mine !== seq) return;
        $(list).replaceChildren(el("li", { class: "muted", textContent: `${err.status}: ${err.message}` }));
      }
    }, 180);
  });
}

// ---- similar tracks ---------------------------------------------------------------------------------
function renderSeeds() {
  const list = $("#seeds");
  if (!state.seeds.length) { list.replaceChildren(el("li", { class: "empty", textContent: "Pick one or more tracks above." })); return; }
  list.replaceChildren(...state.seeds.map((s, i) => el("li", { class: s.negative ? "negative" : "", dataset: { id: s.track.track_id },
    title: s.negative ? "less like this (click to flip)" : "more like this (click to flip)",
    onclick: () => { s.negative = !s.negative; renderSeeds(); } },
  s.negative ? "− " : "+ ", trackLabel(s.track),
  el("button", { textContent: "×", title: "remove", onclick: (e) => { e.stopPropagation(); state.seeds.splice(i, 1); renderSeeds(); } }))));
}

function addSeed(track, { replace = false } = {}) {
  if (replace) state.seeds = [];
  if (!state.seeds.some((s) => s.track.track_id === track.track_id)) state.seeds.push({ track, negative: false });
  renderSeeds();
}

function featureSelect() {
  return el("select", {}, ...(state.info ? state.info.feature_names : []).map((f) => el("option", { value: f, textContent: f })));
}

function addTarget() {
  const row = el("div", { class: "row target" }, featureSelect(), el("input", { type: "number", step: "any", placeholder: "value" }),
    el("button", { type: "button", class: "small", textContent: "×", onclick: () => row.remove() }));
  $("#targets").append(row);
}

function addRange() {
  const row = el("div", { class: "row range" }, featureSelect(), el("input", { type: "number", step: "any", placeholder: "min" }),
    el("input", { type: "number", step: "any", placeholder: "max" }),
    el("button", { type: "button", class: "small", textContent: "×", onclick: () => row.remove() }));
  $("#ranges").append(row);
}

function similarRequest() {
  const req = {
    seeds: state.seeds.filter((s) => !s.negative).map((s) => ({ track_id: s.track.track_id })),
    negative_seeds: state.seeds.filter((s) => s.negative).map((s) => ({ track_id: s.track.track_id })),
    k: wholeField("#opt-k", "Results (k)", 10, 1), offset: wholeField("#opt-offset", "Offset", 0),
    max_per_artist: wholeField("#opt-artist-cap", "Max per artist", 0), diversity: Number($("#opt-diversity").value),
  };
  if (!$("#opt-gw-default").checked) req.genre_weight = Number($("#opt-gw").value);
  const targets = {};
  for (const row of document.querySelectorAll("#targets .row")) {
    const [sel, input] = row.querySelectorAll("select, input");
    if (input.value !== "") targets[sel.value] = Number(input.value);
  }
  if (Object.keys(targets).length) { req.targets = targets; req.target_weight = Number($("#opt-tw").value); }
  const filter = {};
  if (selected("#f-include").length) filter.include_genres = selected("#f-include");
  if (selected("#f-exclude").length) filter.exclude_genres = selected("#f-exclude");
  if (selected("#f-moods").length) filter.mood_ids = selected("#f-moods").map(Number);
  if ($("#f-explicit").value) filter.explicit = $("#f-explicit").value === "true";
  const ranges = {};
  for (const row of document.querySelectorAll("#ranges .row")) {
    const [sel, lo, hi] = row.querySelectorAll("select, input");
    const r = {};
    if (lo.value !== "") r.min = Number(lo.value);
    if (hi.value !== "") r.max = Number(hi.value);
    if (Object.keys(r).length) ranges[sel.value] = r;
  }
  if (Object.keys(ranges).length) filter.ranges = ranges;
  if (Object.keys(filter).length) req.filter = filter;
  return req;
}

function moodCell(t) {
  return el("td", { class: t.mood_core ? "name" : "name noncore", title: t.mood_core ? "core member" : "assigned by its nearest core tracks" },
    el("span", { class: "swatch", style: `background:${moodColour(t.mood_id)}` }), bdi(t.mood_name));
}

async function runSimilar() {
  await runLatest("similar", "#similar-error", clearSimilar, async (current) => {
    if (!state.seeds.some((s) => !s.negative)) throw new LocalError("No seed", "pick at least one track to find tracks like it");
    const req = similarRequest();
    const response = await rpc("SimilarTracks", req);
    if (current()) renderSimilar(req, response);
  });
}

function clearSimilar() {
  state.lastSimilar = null;
  $("#similar-results tbody").replaceChildren();
  $("#similar-stats").textContent = "";
}

function renderSimilar(req, response) {
  state.lastSimilar = response;
  $("#similar-results tbody").replaceChildren(...response.results.map((r, i) => el("tr", { dataset: { id: r.track.track_id } },
    el("td", { class: "num", textContent: req.offset + i + 1 }), el("td", { class: "num", textContent: Number(r.score).toFixed(3) }),
    el("td", { class: "name" }, bdi(r.track.name)), el("td", { class: "name" }, nameList(r.track.artists)),
    el("td", { class: "name" }, nameList(r.track.genres)), moodCell(r.track),
    el("td", {}, el("button", { class: "small", textContent: "seed", title: "more like this one", onclick: () => { addSeed(r.track, { replace: true }); runSimilar(); } })))));
  const s = response.stats;
  // without filters, fewer results means the catalog (past the offset, under the artist cap) had no more
  const short = req.filter ? " · fewer than asked: the filters left no more" : " · fewer tracks than asked matched";
  $("#similar-stats").textContent = `${response.results.length} results in ${Number(s.took_ms).toFixed(2)} ms · ` +
    `${s.candidates_examined} candidates examined, ${s.candidates_filtered} filtered` + (s.exhausted ? short : "") +
    (response.unknown_seed_ids.length ? ` · unknown seeds skipped: ${response.unknown_seed_ids.join(", ")}` : "");
}

function openSimilar(track) {
  addSeed(track, { replace: true });
  openTab("similar");
  runSimilar();
}

// ---- mood map ---------------------------------------------------------------------------------------
async function loadMap() {
  const current = newTicket("map");
  await guarded("#map-error", async () => {
    const data = await api("/console/api/map");
    if (!current()) return;  // the bundle changed meanwhile: a newer load is on its way
    state.map = { data, highlight: null, drawnByMood: {} };
    $("#map-info").textContent = `${data.shown.toLocaleString()} of ${data.total.toLocaleString()} tracks` +
      (data.shown < data.total ? " (a fixed sample of every mood)" : "") + ` · ${data.method}`;
    $("#map-legend").replaceChildren(...data.moods.map((m) => el("li", { dataset: { mood: m.mood_id },
      onclick: () => highlightMood(m.mood_id) },
    el("span", { class: "swatch", style: `background:${moodColour(m.mood_id)}` }), `${m.mood_id} · ${m.name} (${m.size.toLocaleString()})`)));
    drawMap();
  });
}

function highlightMood(moodId) {
  if (!state.map) return;
  state.map.highlight = state.map.highlight === moodId ? null : moodId;
  drawMap();
}

// No map until the next loadMap(): the canvas, legend and tip of the old one go with it, and a load still on its
// way (from the old bundle) is dropped.
function clearMap() {
  newTicket("map");
  state.map = null;
  $("#map-tip").hidden = true;
  $("#map-info").textContent = "";
  $("#map-legend").replaceChildren();
  const canvas = $("#map-canvas");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  delete canvas.dataset.points;
  delete canvas.dataset.drawnMoods;
}

// The canvas fits its box: beside the legend on a wide screen, the box's whole width once the legend wraps below
// it (narrow screens: a phone's is under 400 px), never wider than 900 px.
function mapWidth() {
  const wrap = document.querySelector("#tab-map .mapwrap");
  const stacked = getComputedStyle(wrap).flexDirection === "column";
  return Math.round(Math.max(160, Math.min(900, wrap.clientWidth - (stacked ? 0 : 360))));
}

function drawMap() {
  const map = state.map;
  const canvas = $("#map-canvas");
  const ratio = window.devicePixelRatio || 1;
  const width = mapWidth();
  const height = Math.round(width * 0.69);
  canvas.style.width = `${width}px`; canvas.style.height = `${height}px`;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, width, height);
  const { x, y, mood } = map.data;
  const pad = 28;
  const [x0, x1] = [Math.min(...x), Math.max(...x)], [y0, y1] = [Math.min(...y), Math.max(...y)];
  const sx = (width - 2 * pad) / ((x1 - x0) || 1), sy = (height - 2 * pad) / ((y1 - y0) || 1);
  map.px = x.map((v) => pad + (v - x0) * sx);
  map.py = y.map((v) => height - pad - (v - y0) * sy);
  ctx.fillStyle = "#6b7280"; ctx.font = "12px system-ui";
  ctx.fillText(`→ ${map.data.axes[0]}`, pad, height - 8);
  ctx.save(); ctx.translate(12, height - pad); ctx.rotate(-Math.PI / 2); ctx.fillText(`→ ${map.data.axes[1]}`, 0, 0); ctx.restore();
  const dot = x.length > 15000 ? 2 : 3;
  map.drawnByMood = {};
  // a fixed shuffled order, so no mood is drawn wholly on top of another
  const order = map.order || (map.order = shuffled(x.length));
  for (const i of order) {
    const m = mood[i];
    const dim = map.highlight !== null && map.highlight !== m;
    ctx.globalAlpha = dim ? 0.06 : 0.6;
    ctx.fillStyle = moodColour(m);
    ctx.fillRect(map.px[i] - dot / 2, map.py[i] - dot / 2, dot, dot);
    if (!dim) map.drawnByMood[m] = (map.drawnByMood[m] || 0) + 1;
  }
  ctx.globalAlpha = 1;
  for (const li of document.querySelectorAll("#map-legend li")) {
    li.classList.toggle("dim", map.highlight !== null && Number(li.dataset.mood) !== map.highlight);
  }
  // a grid of cells for hover lookups
  map.cell = 10; map.grid = new Map();
  for (let i = 0; i < x.length; i++) {
    const key = `${Math.floor(map.px[i] / map.cell)},${Math.floor(map.py[i] / map.cell)}`;
    if (!map.grid.has(key)) map.grid.set(key, []);
    map.grid.get(key).push(i);
  }
  canvas.dataset.points = String(x.length);
  canvas.dataset.drawnMoods = Object.keys(map.drawnByMood).join(",");
}

function shuffled(n) {
  const order = Array.from({ length: n }, (_, i) => i);
  let seed = 12345;
  for (let i = n - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const j = seed % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

function pointAt(event) {
  const map = state.map;
  if (!map || !map.grid) return -1;
  const rect = event.target.getBoundingClientRect();
  const mx = event.clientX - rect.left, my = event.clientY - rect.top;
  let best = -1, bestD = 49;
  const cx = Math.floor(mx / map.cell), cy = Math.floor(my / map.cell);
  for (let gx = cx - 1; gx <= cx + 1; gx++) {
    for (let gy = cy - 1; gy <= cy + 1; gy++) {
      for (const i of map.grid.get(`${gx},${gy}`) || []) {
        if (map.highlight !== null && map.data.mood[i] !== map.highlight) continue;
        const d = (map.px[i] - mx) ** 2 + (map.py[i] - my) ** 2;
        if (d < bestD) { bestD = d; best = i; }
      }
    }
  }
  return best;
}

function mapHover(event) {
  const tip = $("#map-tip");
  // no map (a 401, the server down, a reload that cleared it): nothing to point at
  if (!state.map) { tip.hidden = true; return; }
  const i = pointAt(event);
  state.map.hover = i;
  if (i < 0) { tip.hidden = true; return; }
  const d = state.map.data;
  const mood = d.moods.find((m) => m.mood_id === d.mood[i]);
  tip.replaceChildren(el("b", {}, bdi(d.name[i])), el("div", {}, bdi(d.artists[i])),
    el("div", {}, el("span", { class: "swatch", style: `background:${moodColour(d.mood[i])}` }), mood ? mood.name : `mood ${d.mood[i]}`));
  tip.hidden = false;
  // beside the point, but kept inside the canvas: on a narrow one a tip to the right would widen the page
  const room = event.target.clientWidth - tip.offsetWidth;
  tip.style.left = `${Math.max(0, Math.min(state.map.px[i] + 12, room))}px`; tip.style.top = `${state.map.py[i] + 12}px`;
}

async function mapClick(event) {
  const i = pointAt(event);
  if (i < 0) return;
  const d = state.map.data;
  await guarded("#map-error", async () => openSimilar((await rpc("GetTrack", { track_id: d.id[i] })).track));
}

// ---- playlists --------------------------------------------------------------------------------------
function playlistRequest() {
  const source = document.querySelector("input[name=pl-source]:checked").value;
  wholeField("#pl-shuffle", "Shuffle seed", 0);  // checked here, sent as typed: a uint64 can exceed a JS number
  const req = { length: wholeField("#pl-length", "Length", 20, 1), max_per_artist: wholeField("#pl-artist-cap", "Max per artist", 0),
    shuffle_seed: $("#pl-shuffle").value.trim() || "0", include_features: true };
  if (source === "mood") req.mood_id = Number($("#pl-mood").value);
  else if (source === "seed") {
    if (!state.plSeed) throw new LocalError("No seed", "search and pick a seed track first");
    req.seed_track_id = state.plSeed.track_id;
  } else req.target = { valence: Number($("#pl-valence").value), energy: Number($("#pl-energy").value) };
  return req;
}

async function runPlaylist() {
  await runLatest("playlist", "#playlist-error", clearPlaylist, async (current) => {
    const response = await rpc("MoodPlaylist", playlistRequest());
    if (current()) renderPlaylist(response);
  });
}

function clearPlaylist() {
  state.lastPlaylist = null;
  $("#playlist-mood").replaceChildren();
  $("#playlist-chart").replaceChildren();
  $("#playlist-results tbody").replaceChildren();
}

function renderPlaylist(response) {
  state.lastPlaylist = response;
  $("#playlist-mood").replaceChildren(el("span", { class: "swatch", style: `background:${moodColour(response.mood.mood_id)}` }),
    bdi(response.mood.name), ` · ${response.entries.length} tracks in ${Number(response.took_ms).toFixed(1)} ms`);
  const maxStep = Math.max(1e-9, ...response.entries.map((e) => e.transition));
  $("#playlist-results tbody").replaceChildren(...response.entries.map((e) => {
    const f = e.track.features || {};
    return el("tr", { dataset: { id: e.track.track_id, position: e.position } },
      el("td", { class: "num", textContent: e.position + 1 }), el("td", { class: "name" }, bdi(e.track.name)),
      el("td", { class: "name" }, nameList(e.track.artists)),
      el("td", { class: "num", textContent: f.tempo !== undefined ? Math.round(f.tempo) : "–" }),
      el("td", { class: "num", textContent: f.energy !== undefined ? f.energy.toFixed(2) : "–" }),
      el("td", { textContent: f.key !== undefined ? (KEYS[Math.round(f.key)] || f.key) + (f.mode === 0 ? "m" : "") : "–" }),
      el("td", { title: `distance ${e.transition.toFixed(3)} in standardized tempo, energy and key` },
        el("div", { class: "transition" }, el("div", { style: `width:${(100 * e.transition / maxStep).toFixed(1)}%` }))));
  }));
  drawPlaylistChart(response.entries);
}

function drawPlaylistChart(entries) {
  const svg = $("#playlist-chart");
  const width = svg.clientWidth || 700, height = 140, pad = 24;
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const series = [["tempo", "#1f6feb"], ["energy", "#d1242f"]].filter(([f]) => entries.some((e) => e.track.features && e.track.features[f] !== undefined));
  const n = entries.length;
  for (const [name, colour] of series) {
    const values = entries.map((e) => e.track.features[name]);
    const lo = Math.min(...values), hi = Math.max(...values);
    const points = values.map((v, i) => `${pad + (n > 1 ? i * (width - 2 * pad) / (n - 1) : 0)},${height - pad - (hi > lo ? (v - lo) / (hi - lo) : 0.5) * (height - 2 * pad)}`);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points.join(" ")); line.setAttribute("fill", "none");
    line.setAttribute("stroke", colour); line.setAttribute("stroke-width", "2");
    svg.append(line);
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", pad + (series.indexOf(series.find((s) => s[0] === name)) * 180));
    label.setAttribute("y", 14); label.setAttribute("fill", colour); label.setAttribute("font-size", "12");
    label.textContent = `${name} ${name === "tempo" ? Math.round(lo) + "–" + Math.round(hi) + " BPM" : lo.toFixed(2) + "–" + hi.toFixed(2)} (scaled)`;
    svg.append(label);
  }
}

// ---- genre classification ---------------------------------------------------------------------------
function buildFeatureForm() {
  if (!state.info) return;
  $("#cl-features").replaceChildren(...state.info.feature_names.map((f) => el("label", {}, f,
    el("input", { type: "number", step: "any", dataset: { feature: f } }))));
}

function bars(box, items, { diverging = false } = {}) {
  const max = Math.max(1e-9, ...items.map(([, v]) => Math.abs(v)));
  $(box).replaceChildren(...items.map(([name, value]) => {
    const share = Math.abs(value) / max;
    const fill = diverging ?
      el("div", { class: `fill${value < 0 ? " neg" : ""}`, style: `left:${value < 0 ? 50 - 50 * share : 50}%;width:${50 * share}%` }) :
      el("div", { class: "fill", style: `width:${(100 * value).toFixed(1)}%` });
    return el("div", { class: "bar", dataset: { name } }, el("span", { textContent: name }), el("div", { class: "track" }, fill),
      el("span", { class: "num", textContent: diverging ? (value >= 0 ? "+" : "") + value.toFixed(3) : `${(100 * value).toFixed(1)}%` }));
  }));
}

function classifyTrack() {
  classify(() => {
    if (!state.clTrack) throw new LocalError("No track", "search and pick a track first");
    return { track_id: state.clTrack.track_id };
  });
}

function classifyValues() {
  const values = {};
  for (const input of document.querySelectorAll("#cl-features input")) if (input.value !== "") values[input.dataset.feature] = Number(input.value);
  classify(() => ({ features: { values } }));
}

// `what()` gives the request's track or values (or throws a LocalError saying what is missing).
async function classify(what) {
  await runLatest("classify", "#classify-error", clearClassify, async (current) => {
    const req = { top_k: wholeField("#cl-top", "Top genres", 5, 1), explain: $("#cl-explain").checked, ...what() };
    const response = await rpc("ClassifyGenre", req);
    if (current()) renderClassify(response);
  });
}

function clearClassify() {
  state.lastClassify = null;
  for (const box of ["#classify-genres", "#classify-families", "#classify-contributions"]) $(box).replaceChildren();
  $("#classify-bias").textContent = "";
  $("#classify-known").textContent = "";
}

function renderClassify(response) {
  state.lastClassify = response;
  bars("#classify-genres", response.genres.map((g) => [g.genre, g.probability]));
  bars("#classify-families", response.families.map((g) => [g.genre, g.probability]));
  bars("#classify-contributions", response.contributions.slice(0, 12).map((c) => [c.feature, c.contribution]), { diverging: true });
  $("#classify-bias").textContent = response.contributions.length ? `(margin of '${response.genres[0].genre}', the softmax's logit; bias ${Number(response.bias).toFixed(3)})` : "(ask with explain)";
  $("#classify-known").textContent = response.known_genres.length ? `The catalog lists this track under: ${response.known_genres.join(", ")}` : "";
}

async function pickClassifyTrack(track) {
  state.clTrack = track;
  $("#cl-track").replaceChildren(...trackLabel(track));
  // what is on screen was the previous track's (under this one's name): it goes, and so does any answer still coming
  newTicket("classify");
  clearClassify();
  const current = newTicket("classify-pick");
  await guarded("#classify-error", async () => {
    const full = (await rpc("GetTrack", { track_id: track.track_id })).track;
    if (!current()) return;
    for (const input of document.querySelectorAll("#cl-features input")) {
      const v = full.features[input.dataset.feature];
      input.value = v === undefined ? "" : v;
    }
  });
}

// ---- report -----------------------------------------------------------------------------------------
async function showReportPictures() {
  await guarded("#report-error", async () => {
    $("#report-pictures").textContent = "Drawing the report…";
    try {
      const { text } = await request("/console/api/report.html");
      const frame = $("#report-frame");
      frame.srcdoc = text;
      frame.hidden = false;
    } finally { $("#report-pictures").textContent = "Show the report with pictures"; }
  });
}

// ---- wiring -----------------------------------------------------------------------------------------
function bindOutput(input, output, fmt = (v) => v) {
  const update = () => { $(output).textContent = fmt($(input).value); };
  $(input).addEventListener("input", update); update();
}

function saveToken(event) {
  event.preventDefault();
  const token = $("#token-input").value.trim();
  const problem = tokenProblem(token);
  showTokenProblem(problem && `Not saved: ${problem}.`);
  if (problem) return;
  state.token = token;
  sessionStorage.setItem("musicrec-token", state.token);
  forgetAuthErrors();
  state.viewsLoaded = false;  // the views may have failed with the old token: draw them again
  refreshInfo();
}

function showTokenProblem(problem) {
  $("#token-error").textContent = problem;
  $("#token-error").hidden = !problem;
}

// The 401s and 403s on screen were the old token's: with a new one they no longer say anything true.
function forgetAuthErrors() {
  for (const box of document.querySelectorAll(".error")) {
    if (["401", "403"].includes(box.dataset.code)) showError(`#${box.id}`, null);
  }
  for (const list of document.querySelectorAll(".picklist")) list.replaceChildren();
}

function start() {
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => openTab(b.dataset.tab));
  const stored = tokenProblem(state.token);  // saved by an older console that did not check
  if (stored) { state.token = ""; sessionStorage.removeItem("musicrec-token"); showTokenProblem(`The saved token was dropped: ${stored}.`); }
  $("#token-input").value = state.token;
  $("#token-form").addEventListener("submit", saveToken);
  searchBox("#search-input", "#search-results", (t) => addSeed(t));
  searchBox("#pl-search", "#pl-search-results", (t) => { state.plSeed = t; $("#pl-seed").replaceChildren(...trackLabel(t));
    document.querySelector("input[name=pl-source][value=seed]").checked = true; });
  searchBox("#cl-search", "#cl-search-results", pickClassifyTrack);
  $("#add-target").addEventListener("click", addTarget);
  $("#add-range").addEventListener("click", addRange);
  $("#similar-run").addEventListener("click", runSimilar);
  $("#playlist-run").addEventListener("click", runPlaylist);
  $("#classify-track").addEventListener("click", classifyTrack);
  $("#classify-features").addEventListener("click", classifyValues);
  $("#opt-gw-default").addEventListener("change", () => { $("#opt-gw").disabled = $("#opt-gw-default").checked;
    $("#opt-gw-out").textContent = $("#opt-gw-default").checked ? "–" : $("#opt-gw").value; });
  bindOutput("#opt-gw", "#opt-gw-out");
  $("#opt-gw-out").textContent = "–";
  bindOutput("#opt-diversity", "#opt-diversity-out");
  bindOutput("#opt-tw", "#opt-tw-out");
  for (const f of ["valence", "energy"]) bindOutput(`#pl-${f}`, `#pl-${f}-out`);
  for (const f of ["valence", "energy"]) $(`#pl-${f}`).addEventListener("input", () => { document.querySelector("input[name=pl-source][value=target]").checked = true; });
  $("#pl-mood").addEventListener("change", () => { document.querySelector("input[name=pl-source][value=mood]").checked = true; });
  $("#report-pictures").addEventListener("click", showReportPictures);
  const canvas = $("#map-canvas");
  canvas.addEventListener("mousemove", mapHover);
  canvas.addEventListener("mouseleave", () => { $("#map-tip").hidden = true; });
  canvas.addEventListener("click", mapClick);
  window.addEventListener("resize", () => { if (state.map && $("#tab-map").classList.contains("active")) drawMap(); });
  refreshInfo();
  setInterval(refreshInfo, 5000);
}

start();
