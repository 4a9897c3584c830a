// Track names and the track search box, shared by three tabs.

import { $, el } from "./dom.js";
import { api } from "./net.js";

// Names are isolated (<bdi>) from the text around them: a right-to-left name, or one holding U+202E, must not
// reorder the "—", the other artists or the × button beside it.
export const bdi = (text) => el("bdi", { textContent: text });
export const nameList = (names) => (names || []).flatMap((n, i) => (i ? [", ", bdi(n)] : [bdi(n)]));
export function trackLabel(t) { return [bdi(t.name), " — ", ...nameList(t.artists)]; }

export function searchBox(input, list, onPick) {
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
