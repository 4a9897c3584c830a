// The playlist tab: a mood, a seed track or a valence/energy target, and the playlist's table and chart.

import { state } from "./state.js";
import { $, el, moodColour, KEYS } from "./dom.js";
import { LocalError, rpc, runLatest, wholeField } from "./net.js";
import { bdi, nameList } from "./tracks.js";

export function playlistRequest() {
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

export async function runPlaylist() {
  await runLatest("playlist", "#playlist-error", clearPlaylist, async (current) => {
    const response = await rpc("MoodPlaylist", playlistRequest());
    if (current()) renderPlaylist(response);
  });
}

export function clearPlaylist() {
  state.lastPlaylist = null;
  $("#playlist-mood").replaceChildren();
  $("#playlist-chart").replaceChildren();
  $("#playlist-results tbody").replaceChildren();
}

export function renderPlaylist(response) {
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

export function drawPlaylistChart(entries) {
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
