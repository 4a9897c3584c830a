// What is on screen, shared by every part of the console; window.consoleState is it (the browser tests read it).

export const state = {
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
