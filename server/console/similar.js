// The similar-tracks tab: seeds, options and filters, and the answer's table.

import { state } from "./state.js";
import { $, selected, el, moodColour } from "./dom.js";
import { LocalError, numberInput, rpc, runLatest, wholeField } from "./net.js";
import { openTab } from "./status.js";
import { bdi, nameList, trackLabel } from "./tracks.js";

export function renderSeeds() {
  const list = $("#seeds");
  if (!state.seeds.length) { list.replaceChildren(el("li", { class: "empty", textContent: "Pick one or more tracks above." })); return; }
  list.replaceChildren(...state.seeds.map((s, i) => el("li", { class: s.negative ? "negative" : "", dataset: { id: s.track.track_id },
    title: s.negative ? "less like this (click to flip)" : "more like this (click to flip)",
    onclick: () => { s.negative = !s.negative; renderSeeds(); } },
  s.negative ? "− " : "+ ", trackLabel(s.track),
  el("button", { textContent: "×", title: "remove", onclick: (e) => { e.stopPropagation(); state.seeds.splice(i, 1); renderSeeds(); } }))));
}

export function addSeed(track, { replace = false } = {}) {
  if (replace) state.seeds = [];
  if (!state.seeds.some((s) => s.track.track_id === track.track_id)) state.seeds.push({ track, negative: false });
  renderSeeds();
}

export function featureSelect() {
  return el("select", {}, ...(state.info ? state.info.feature_names : []).map((f) => el("option", { value: f, textContent: f })));
}

export function addTarget() {
  const row = el("div", { class: "row target" }, featureSelect(), el("input", { type: "number", step: "any", placeholder: "value" }),
    el("button", { type: "button", class: "small", textContent: "×", onclick: () => row.remove() }));
  $("#targets").append(row);
}

export function addRange() {
  const row = el("div", { class: "row range" }, featureSelect(), el("input", { type: "number", step: "any", placeholder: "min" }),
    el("input", { type: "number", step: "any", placeholder: "max" }),
    el("button", { type: "button", class: "small", textContent: "×", onclick: () => row.remove() }));
  $("#ranges").append(row);
}

export function similarRequest() {
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
    const value = numberInput(input, `Targets: ${sel.value}`);
    if (value === undefined) continue;
    if (sel.value in targets) throw new LocalError("Check Targets", `${sel.value} has two targets; give each feature one`);
    targets[sel.value] = value;
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
    const min = numberInput(lo, `Ranges: ${sel.value} min`), max = numberInput(hi, `Ranges: ${sel.value} max`);
    if (min !== undefined) r.min = min;
    if (max !== undefined) r.max = max;
    if (!Object.keys(r).length) continue;
    if (sel.value in ranges) throw new LocalError("Check Ranges", `${sel.value} has two ranges; give each feature one`);
    ranges[sel.value] = r;
  }
  if (Object.keys(ranges).length) filter.ranges = ranges;
  if (Object.keys(filter).length) req.filter = filter;
  return req;
}

export function moodCell(t) {
  return el("td", { class: t.mood_core ? "name" : "name noncore", title: t.mood_core ? "core member" : "assigned by its nearest core tracks" },
    el("span", { class: "swatch", style: `background:${moodColour(t.mood_id)}` }), bdi(t.mood_name));
}

export async function runSimilar() {
  await runLatest("similar", "#similar-error", clearSimilar, async (current) => {
    if (!state.seeds.some((s) => !s.negative)) throw new LocalError("No seed", "pick at least one track to find tracks like it");
    const req = similarRequest();
    const response = await rpc("SimilarTracks", req);
    if (current()) renderSimilar(req, response);
  });
}

export function clearSimilar() {
  state.lastSimilar = null;
  $("#similar-results tbody").replaceChildren();
  $("#similar-stats").textContent = "";
}

export function renderSimilar(req, response) {
  state.lastSimilar = response;
  $("#similar-results tbody").replaceChildren(...response.results.map((r, i) => el("tr", { dataset: { id: r.track.track_id } },
    el("td", { class: "num", textContent: req.offset + i + 1 }), el("td", { class: "num", textContent: Number(r.score).toFixed(3) }),
    el("td", { class: "name" }, bdi(r.track.name)), el("td", { class: "name" }, nameList(r.track.artists)),
    el("td", { class: "name" }, nameList(r.track.genres)), moodCell(r.track),
    el("td", {}, el("button", { class: "small", textContent: "seed", title: "more like this one", onclick: () => { addSeed(r.track, { replace: true }); runSimilar(); } })))));
  const s = response.stats;
  // without filters, fewer results means the catalog (past the offset, under the artist cap) had no more
  const short = !req.filter ? " · fewer tracks than asked matched" :
    req.max_per_artist ? " · fewer than asked: the filters and the artist cap left no more" : " · fewer than asked: the filters left no more";
  $("#similar-stats").textContent = `${response.results.length} results in ${Number(s.took_ms).toFixed(2)} ms · ` +
    `${s.candidates_examined} candidates examined, ${s.candidates_filtered} filtered` + (s.exhausted ? short : "") +
    (response.unknown_seed_ids.length ? ` · unknown seeds skipped: ${response.unknown_seed_ids.join(", ")}` : "");
}

export function openSimilar(track) {
  addSeed(track, { replace: true });
  openTab("similar");
  runSimilar();
}
