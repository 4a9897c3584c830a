// The status line and banner, the 5-second poll of ServerInfo, a bundle switch, and the tabs.

import { state } from "./state.js";
import { $, el, refill } from "./dom.js";
import { rpc, api, showError, newTicket } from "./net.js";
import { renderSeeds, clearSimilar } from "./similar.js";
import { loadMap, clearMap, drawMap } from "./map.js";
import { clearPlaylist } from "./playlist.js";
import { buildFeatureForm, clearClassify } from "./classify.js";

// ---- status, reloads and outages --------------------------------------------------------------------
export function setStatus(kind, detail = "") {
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
export function bannerMessage() {
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
export function renderBanner() {
  const banner = $("#banner");
  const message = bannerMessage();
  banner.hidden = !message;
  if (!message) { banner.replaceChildren(); return; }
  if (banner.dataset.kind === message.kind && banner.firstChild && banner.firstChild.textContent === message.text) return;  // as it is
  banner.dataset.kind = message.kind;
  banner.replaceChildren(el("span", { textContent: message.text }), message.dismissable ?
    el("button", { type: "button", class: "small", id: "banner-dismiss", textContent: "Dismiss", onclick: dismissNotice }) : "");
}

export function dismissNotice() {
  if (!state.notice) return;
  state.notice = null;
  renderBanner();
}

export async function refreshInfo() {
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
export function forgetOldBundle() {
  for (const view of ["similar", "playlist", "classify", "classify-pick"]) newTicket(view);
  state.seeds = []; renderSeeds(); clearSimilar();
  state.plSeed = null; $("#pl-seed").textContent = "no seed picked"; clearPlaylist();
  state.clTrack = null; $("#cl-track").textContent = "no track picked"; clearClassify();
  for (const box of ["#similar-error", "#playlist-error", "#classify-error", "#map-error"]) showError(box, null);
  for (const sel of ["#pl-mood", "#f-moods"]) $(sel).selectedIndex = -1;  // the new bundle's mood 3 is another mood
}

// Returns the selected genre filters the bundle no longer has (dropped from the selection).
export async function loadBundleViews() {
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

export function fillMoodSelects() {
  const options = () => state.moods.map((m) => el("option", { value: m.mood_id, textContent: `${m.mood_id} · ${m.name} (${m.size})` }));
  refill("#pl-mood", options());
  refill("#f-moods", options());
}

export function fillFilters() {
  const opts = () => state.bundle.genres.map((g) => el("option", { value: g, textContent: g }));
  return [...new Set([...refill("#f-include", opts()), ...refill("#f-exclude", opts())])];
}

// ---- tabs -------------------------------------------------------------------------------------------
export function openTab(name) {
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const s of document.querySelectorAll(".tab")) s.classList.toggle("active", s.id === `tab-${name}`);
  // a drawn map is drawn again: the window may have been resized while the tab was hidden
  if (name === "map") { if (state.map) drawMap(); else loadMap(); }
}
