// The genre tab: a catalog track or typed feature values, and the probabilities with their explanation.

import { state } from "./state.js";
import { $, el } from "./dom.js";
import { LocalError, numberInput, rpc, guarded, newTicket, runLatest, wholeField } from "./net.js";
import { trackLabel } from "./tracks.js";

export function buildFeatureForm() {
  if (!state.info) return;
  $("#cl-features").replaceChildren(...state.info.feature_names.map((f) => el("label", {}, f,
    el("input", { type: "number", step: "any", dataset: { feature: f } }))));
}

export function bars(box, items, { diverging = false } = {}) {
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

export function classifyTrack() {
  classify(() => {
    if (!state.clTrack) throw new LocalError("No track", "search and pick a track first");
    return { track_id: state.clTrack.track_id };
  });
}

export function classifyValues() {
  classify(() => {  // a value the box cannot read was left out, and the server said the feature was missing
    const values = {};
    for (const input of document.querySelectorAll("#cl-features input")) {
      const value = numberInput(input, `Features: ${input.dataset.feature}`);
      if (value !== undefined) values[input.dataset.feature] = value;
    }
    return { features: { values } };
  });
}

// `what()` gives the request's track or values (or throws a LocalError saying what is missing).
export async function classify(what) {
  await runLatest("classify", "#classify-error", clearClassify, async (current) => {
    const req = { top_k: wholeField("#cl-top", "Top genres", 5, 1), explain: $("#cl-explain").checked, ...what() };
    const response = await rpc("ClassifyGenre", req);
    if (current()) renderClassify(response);
  });
}

export function clearClassify() {
  state.lastClassify = null;
  for (const box of ["#classify-genres", "#classify-families", "#classify-contributions"]) $(box).replaceChildren();
  $("#classify-bias").textContent = "";
  $("#classify-known").textContent = "";
}

export function renderClassify(response) {
  state.lastClassify = response;
  bars("#classify-genres", response.genres.map((g) => [g.genre, g.probability]));
  bars("#classify-families", response.families.map((g) => [g.genre, g.probability]));
  bars("#classify-contributions", response.contributions.slice(0, 12).map((c) => [c.feature, c.contribution]), { diverging: true });
  $("#classify-bias").textContent = response.contributions.length ? `(margin of '${response.genres[0].genre}', the softmax's logit; bias ${Number(response.bias).toFixed(3)})` : "(ask with explain)";
  $("#classify-known").textContent = response.known_genres.length ? `The catalog lists this track under: ${response.known_genres.join(", ")}` : "";
}

export async function pickClassifyTrack(track) {
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
