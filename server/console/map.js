// The mood map tab: the bundle's stored 2-D map, drawn on a canvas, with hover and click.

import { state } from "./state.js";
import { $, el, moodColour } from "./dom.js";
import { rpc, api, guarded, newTicket } from "./net.js";
import { bdi } from "./tracks.js";
import { openSimilar } from "./similar.js";

export async function loadMap() {
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

export function highlightMood(moodId) {
  if (!state.map) return;
  state.map.highlight = state.map.highlight === moodId ? null : moodId;
  drawMap();
}

// No map until the next loadMap(): the canvas, legend and tip of the old one go with it, and a load still on its
// way (from the old bundle) is dropped.
export function clearMap() {
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
export function mapWidth() {
  const wrap = document.querySelector("#tab-map .mapwrap");
  const stacked = getComputedStyle(wrap).flexDirection === "column";
  return Math.round(Math.max(160, Math.min(900, wrap.clientWidth - (stacked ? 0 : 360))));
}

export function drawMap() {
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

export function shuffled(n) {
  const order = Array.from({ length: n }, (_, i) => i);
  let seed = 12345;
  for (let i = n - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const j = seed % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

export function pointAt(event) {
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

export function mapHover(event) {
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

export async function mapClick(event) {
  const i = pointAt(event);
  if (i < 0) return;
  const d = state.map.data;
  await guarded("#map-error", async () => openSimilar((await rpc("GetTrack", { track_id: d.id[i] })).track));
}
