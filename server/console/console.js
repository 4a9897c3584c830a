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
  status: "starting",
};
window.consoleState = state;

const $ = (sel) => document.querySelector(sel);
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

async function request(path, options = {}) {
  const headers = { "Content-Type": "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  let response;
  try {
    response = await fetch(path, { ...options, headers });
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

function showError(box, err) {
  const node = $(box);
  if (!err) { node.hidden = true; node.textContent = ""; return; }
  let title = `${err.status || "error"}${err.code ? ` (HTTP ${err.code})` : ""}`;
  let hint = "";
  if (err.code === 401) {
    title = "Authentication failed (HTTP 401 UNAUTHENTICATED)";
    hint = state.token ? "The token was refused: check it in the box at the top." :
      "This server needs a bearer token: enter it in the box at the top.";
  } else if (err.code === 403) {
    title = "Not allowed (HTTP 403 PERMISSION_DENIED)";
  } else if (err.code === 503) {
    hint = "No bundle is loaded yet (the server is starting, or loading one): the console retries on its own.";
  } else if (err.code === 0) {
    hint = "The console keeps trying every few seconds; what is on screen may be stale.";
  }
  node.replaceChildren(el("b", { textContent: title }), el("span", { textContent: err.message }),
    hint ? el("div", { textContent: hint }) : null);
  node.dataset.code = String(err.code);
  node.hidden = false;
}

async function guarded(box, fn) {
  showError(box, null);
  try { await fn(); } catch (err) {
    if (!(err instanceof ApiError)) { console.error(err); err = new ApiError(-1, "CONSOLE", String(err)); }
    showError(box, err);
  }
}

// ---- status, reloads and outages --------------------------------------------------------------------
function setStatus(kind, detail = "") {
  state.status = kind;
  const node = $("#status");
  node.dataset.state = kind;
  const banner = $("#banner");
  banner.hidden = true;
  if (kind === "ok") {
    const i = state.info;
    node.textContent = `bundle ${i.bundle_version} · ${Number(i.tracks).toLocaleString()} tracks · ${i.moods} moods · ` +
      `${i.genres} genres · ${i.index_kind} index`;
  } else if (kind === "down") {
    node.textContent = "server unreachable";
    banner.textContent = "The server is not answering (down, restarting or unreachable). Retrying every 5 s; " +
      "what is on screen may be stale.";
    banner.dataset.kind = "bad"; banner.hidden = false;
  } else if (kind === "nobundle") {
    node.textContent = "no bundle loaded";
    banner.textContent = `The server has no bundle loaded yet (starting or loading one): ${detail} Retrying every 5 s.`;
    banner.dataset.kind = "warn"; banner.hidden = false;
  } else if (kind === "auth") {
    node.textContent = "token needed";
    banner.textContent = state.token ? "The server refused this token (401). Enter another at the top right." :
      "This server requires a bearer token (401). Enter it at the top right.";
    banner.dataset.kind = "bad"; banner.hidden = false;
  }
}

async function refreshInfo() {
  try {
    const info = await rpc("ServerInfo");
    const previous = state.version;
    state.info = info;
    setStatus("ok");
    if (previous !== info.bundle_version) {
      state.version = info.bundle_version;
      await loadBundleViews();
      if (previous) {
        const banner = $("#banner");
        banner.textContent = `The server switched bundles (reloaded): ${previous} → ${info.bundle_version}. ` +
          "Moods, the map and the report now show the new bundle; earlier results came from the old one.";
        banner.dataset.kind = "warn"; banner.hidden = false;
      }
    }
  } catch (err) { /* the status line and banner already say what happened */ }
}

async function loadBundleViews() {
  const moods = await rpc("ListMoods");
  state.moods = moods.moods;
  state.bundle = await api("/console/api/bundle");
  fillMoodSelects();
  fillFilters();
  $("#opt-gw-default-value").textContent = `(${Number(state.info.default_genre_weight).toFixed(2)})`;
  $("#opt-gw").value = state.info.default_genre_weight;
  state.map = null;
  if ($("#tab-map").classList.contains("active")) loadMap();
  $("#report-text").textContent = state.bundle.report;
  $("#report-pictures").disabled = !state.bundle.report_html;
  $("#report-pictures").title = state.bundle.report_html ? "" : "the server has no matplotlib (pip install 'musicrec[report]')";
  $("#report-frame").hidden = true;
  buildFeatureForm();
}

function fillMoodSelects() {
  const options = () => state.moods.map((m) => el("option", { value: m.mood_id, textContent: `${m.mood_id} · ${m.name} (${m.size})` }));
  $("#pl-mood").replaceChildren(...options());
  $("#f-moods").replaceChildren(...options());
}

function fillFilters() {
  const opts = () => state.bundle.genres.map((g) => el("option", { value: g, textContent: g }));
  $("#f-include").replaceChildren(...opts());
  $("#f-exclude").replaceChildren(...opts());
}

// ---- tabs -------------------------------------------------------------------------------------------
function openTab(name) {
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const s of document.querySelectorAll(".tab")) s.classList.toggle("active", s.id === `tab-${name}`);
  if (name === "map" && !state.map) loadMap();
}

// ---- track search (shared by three tabs) --------------------------------------------------------------
function trackLabel(t) { return `${t.name} — ${(t.artists || []).join(", ")}`; }

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
        }, t.name, " ", el("small", { textContent: `${t.artists.join(", ")} · ${t.genres.join(", ")}` }))),
        found.total > found.tracks.length ? el("li", { class: "muted", textContent: `… ${found.total - found.tracks.length} more: type more words` }) : null);
      } catch (err) {
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
  (s.negative ? "− " : "+ ") + trackLabel(s.track),
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

const selected = (sel) => [...$(sel).selectedOptions].map((o) => o.value);

function similarRequest() {
  const req = {
    seeds: state.seeds.filter((s) => !s.negative).map((s) => ({ track_id: s.track.track_id })),
    negative_seeds: state.seeds.filter((s) => s.negative).map((s) => ({ track_id: s.track.track_id })),
    k: Number($("#opt-k").value) || 10, offset: Number($("#opt-offset").value) || 0,
    max_per_artist: Number($("#opt-artist-cap").value) || 0, diversity: Number($("#opt-diversity").value),
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
  return el("td", { class: t.mood_core ? "" : "noncore", title: t.mood_core ? "core member" : "assigned by its nearest core tracks" },
    el("span", { class: "swatch", style: `background:${moodColour(t.mood_id)}` }), t.mood_name);
}

async function runSimilar() {
  await guarded("#similar-error", async () => {
    if (!state.seeds.some((s) => !s.negative)) throw new ApiError(0, "No seed", "pick at least one track to find tracks like it");
    const response = await rpc("SimilarTracks", similarRequest());
    state.lastSimilar = response;
    const offset = Number($("#opt-offset").value) || 0;
    $("#similar-results tbody").replaceChildren(...response.results.map((r, i) => el("tr", { dataset: { id: r.track.track_id } },
      el("td", { class: "num", textContent: offset + i + 1 }), el("td", { class: "num", textContent: Number(r.score).toFixed(3) }),
      el("td", { textContent: r.track.name }), el("td", { textContent: r.track.artists.join(", ") }),
      el("td", { textContent: r.track.genres.join(", ") }), moodCell(r.track),
      el("td", {}, el("button", { class: "small", textContent: "seed", title: "more like this one", onclick: () => { addSeed(r.track, { replace: true }); runSimilar(); } })))));
    const s = response.stats;
    $("#similar-stats").textContent = `${response.results.length} results in ${Number(s.took_ms).toFixed(2)} ms · ` +
      `${s.candidates_examined} candidates examined, ${s.candidates_filtered} filtered` +
      (s.exhausted ? " · fewer than asked: the filters left no more" : "") +
      (response.unknown_seed_ids.length ? ` · unknown seeds skipped: ${response.unknown_seed_ids.join(", ")}` : "");
  });
}

function openSimilar(track) {
  addSeed(track, { replace: true });
  openTab("similar");
  runSimilar();
}

// ---- mood map ---------------------------------------------------------------------------------------
async function loadMap() {
  await guarded("#map-error", async () => {
    const data = await api("/console/api/map");
    state.map = { data, highlight: null, drawnByMood: {} };
    $("#map-info").textContent = `${data.shown.toLocaleString()} of ${data.total.toLocaleString()} tracks` +
      (data.shown < data.total ? " (a fixed sample of every mood)" : "") + ` · ${data.method}`;
    $("#map-legend").replaceChildren(...data.moods.map((m) => el("li", { dataset: { mood: m.mood_id },
      onclick: () => { state.map.highlight = state.map.highlight === m.mood_id ? null : m.mood_id; drawMap(); } },
    el("span", { class: "swatch", style: `background:${moodColour(m.mood_id)}` }), `${m.mood_id} · ${m.name} (${m.size.toLocaleString()})`)));
    drawMap();
  });
}

function drawMap() {
  const map = state.map;
  const canvas = $("#map-canvas");
  const ratio = window.devicePixelRatio || 1;
  const width = Math.min(900, Math.max(480, document.querySelector("#tab-map .panel").clientWidth - 360));
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
  const i = pointAt(event);
  const tip = $("#map-tip");
  state.map.hover = i;
  if (i < 0) { tip.hidden = true; return; }
  const d = state.map.data;
  const mood = d.moods.find((m) => m.mood_id === d.mood[i]);
  tip.replaceChildren(el("b", { textContent: d.name[i] }), el("div", { textContent: d.artists[i] }),
    el("div", {}, el("span", { class: "swatch", style: `background:${moodColour(d.mood[i])}` }), mood ? mood.name : `mood ${d.mood[i]}`));
  tip.style.left = `${state.map.px[i] + 12}px`; tip.style.top = `${state.map.py[i] + 12}px`;
  tip.hidden = false;
}

async function mapClick(event) {
  const i = pointAt(event);
  if (i < 0) return;
  const d = state.map.data;
  await guarded("#map-error", async () => openSimilar((await rpc("GetTrack", { track_id: d.id[i] })).track));
}

// ---- playlists --------------------------------------------------------------------------------------
async function runPlaylist() {
  await guarded("#playlist-error", async () => {
    const source = document.querySelector("input[name=pl-source]:checked").value;
    const req = { length: Number($("#pl-length").value) || 20, max_per_artist: Number($("#pl-artist-cap").value) || 0,
      shuffle_seed: String(Number($("#pl-shuffle").value) || 0), include_features: true };
    if (source === "mood") req.mood_id = Number($("#pl-mood").value);
    else if (source === "seed") {
      if (!state.plSeed) throw new ApiError(0, "No seed", "search and pick a seed track first");
      req.seed_track_id = state.plSeed.track_id;
    } else req.target = { valence: Number($("#pl-valence").value), energy: Number($("#pl-energy").value) };
    const response = await rpc("MoodPlaylist", req);
    state.lastPlaylist = response;
    $("#playlist-mood").replaceChildren(el("span", { class: "swatch", style: `background:${moodColour(response.mood.mood_id)}` }),
      `${response.mood.name} · ${response.entries.length} tracks in ${Number(response.took_ms).toFixed(1)} ms`);
    const maxStep = Math.max(1e-9, ...response.entries.map((e) => e.transition));
    $("#playlist-results tbody").replaceChildren(...response.entries.map((e) => {
      const f = e.track.features || {};
      return el("tr", { dataset: { id: e.track.track_id, position: e.position } },
        el("td", { class: "num", textContent: e.position + 1 }), el("td", { textContent: e.track.name }),
        el("td", { textContent: e.track.artists.join(", ") }),
        el("td", { class: "num", textContent: f.tempo !== undefined ? Math.round(f.tempo) : "–" }),
        el("td", { class: "num", textContent: f.energy !== undefined ? f.energy.toFixed(2) : "–" }),
        el("td", { textContent: f.key !== undefined ? (KEYS[Math.round(f.key)] || f.key) + (f.mode === 0 ? "m" : "") : "–" }),
        el("td", { title: `distance ${e.transition.toFixed(3)} in standardized tempo, energy and key` },
          el("div", { class: "transition" }, el("div", { style: `width:${(100 * e.transition / maxStep).toFixed(1)}%` }))));
    }));
    drawPlaylistChart(response.entries);
  });
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

async function classify(body) {
  await guarded("#classify-error", async () => {
    const response = await rpc("ClassifyGenre", { top_k: Number($("#cl-top").value) || 5, explain: $("#cl-explain").checked, ...body });
    state.lastClassify = response;
    bars("#classify-genres", response.genres.map((g) => [g.genre, g.probability]));
    bars("#classify-families", response.families.map((g) => [g.genre, g.probability]));
    bars("#classify-contributions", response.contributions.slice(0, 12).map((c) => [c.feature, c.contribution]), { diverging: true });
    $("#classify-bias").textContent = response.contributions.length ? `(margin of '${response.genres[0].genre}', the softmax's logit; bias ${Number(response.bias).toFixed(3)})` : "(ask with explain)";
    $("#classify-known").textContent = response.known_genres.length ? `The catalog lists this track under: ${response.known_genres.join(", ")}` : "";
  });
}

async function pickClassifyTrack(track) {
  state.clTrack = track;
  $("#cl-track").textContent = trackLabel(track);
  await guarded("#classify-error", async () => {
    const full = (await rpc("GetTrack", { track_id: track.track_id })).track;
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

function start() {
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => openTab(b.dataset.tab));
  $("#token-input").value = state.token;
  $("#token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.token = $("#token-input").value.trim();
    sessionStorage.setItem("musicrec-token", state.token);
    state.version = null;
    refreshInfo();
  });
  searchBox("#search-input", "#search-results", (t) => addSeed(t));
  searchBox("#pl-search", "#pl-search-results", (t) => { state.plSeed = t; $("#pl-seed").textContent = trackLabel(t);
    document.querySelector("input[name=pl-source][value=seed]").checked = true; });
  searchBox("#cl-search", "#cl-search-results", pickClassifyTrack);
  $("#add-target").addEventListener("click", addTarget);
  $("#add-range").addEventListener("click", addRange);
  $("#similar-run").addEventListener("click", runSimilar);
  $("#playlist-run").addEventListener("click", runPlaylist);
  $("#classify-track").addEventListener("click", () => {
    if (!state.clTrack) { showError("#classify-error", new ApiError(0, "No track", "search and pick a track first")); return; }
    classify({ track_id: state.clTrack.track_id });
  });
  $("#classify-features").addEventListener("click", () => {
    const values = {};
    for (const input of document.querySelectorAll("#cl-features input")) if (input.value !== "") values[input.dataset.feature] = Number(input.value);
    classify({ features: { values } });
  });
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
