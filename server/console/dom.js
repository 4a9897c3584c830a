// Small DOM helpers shared by every tab.

export const $ = (sel) => document.querySelector(sel);
export const selected = (sel) => [...$(sel).selectedOptions].map((o) => o.value);
export const el = (tag, props = {}, ...children) => {
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
export const moodColour = (i) => `hsl(${(i * 137.508) % 360}, 65%, ${i % 2 ? 42 : 55}%)`;
export const KEYS = ["C", "C♯", "D", "D♯", "E", "F", "F♯", "G", "G♯", "A", "A♯", "B"];

// Refills a <select> with `options`, keeping the choices whose value it still offers (they used to be cleared
// whenever the views were drawn again); returns the chosen values it no longer offers.
export function refill(sel, options) {
  const chosen = selected(sel);
  for (const o of options) o.selected = chosen.includes(o.value);
  $(sel).replaceChildren(...options);
  return chosen.filter((v) => !options.some((o) => o.value === v));
}

export function bindOutput(input, output, fmt = (v) => v) {
  const update = () => { $(output).textContent = fmt($(input).value); };
  $(input).addEventListener("input", update); update();
}
