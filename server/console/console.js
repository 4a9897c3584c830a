// musicrec web console: plain JavaScript over the server's HTTP/JSON face (POST /v1/<Method>, the proto's
// own messages) and the console's few endpoints under /console/api/. No build step, nothing fetched from
// elsewhere. window.consoleState exposes what is on screen, and window.consoleRefresh() runs the 5-second poll
// at once (the browser tests read the one and call the other).
//
// This module (index.html loads it) wires the page and shows the report; the rest are ES modules beside it:
// state.js (what is on screen), dom.js (DOM helpers), net.js (requests, errors, one answer per view),
// status.js (status line, banner, the poll, a bundle switch, tabs), tracks.js (track names, the search box),
// and one per tab: similar.js, map.js, playlist.js, classify.js.

import { state } from "./state.js";
import { $, bindOutput } from "./dom.js";
import { tokenProblem, request, showError, guarded } from "./net.js";
import { refreshInfo, openTab } from "./status.js";
import { trackLabel, searchBox } from "./tracks.js";
import { addSeed, addTarget, addRange, runSimilar } from "./similar.js";
import { drawMap, mapHover, mapClick } from "./map.js";
import { runPlaylist } from "./playlist.js";
import { classifyTrack, classifyValues, pickClassifyTrack } from "./classify.js";

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
  window.consoleRefresh = refreshInfo;
  refreshInfo();
  setInterval(refreshInfo, 5000);
}

start();
