// What every page is built from: elements, tables, badges, collapsible JSON, the status
// line, and what a page must undo when the user leaves it (streams, timers).

export const main = document.getElementById("main");
const statusLine = document.getElementById("status");
let leaving = [];

// onLeave(fn): run fn when the page changes (close a stream, clear a timer).
export function onLeave(fn) { leaving.push(fn); }

export function leave() {
  for (const fn of leaving.splice(0)) { try { fn(); } catch { /* a page's cleanup must not stop routing */ } }
  leaving = [];
}

export const STATUS = (s) => (s || "").replace(/^(EXECUTION|AGENT|HEALTH)_STATUS_/, "").toLowerCase();

export function h(tag, attrs = {}, ...kids) {
  const e = tag === "svg" || tag === "polyline" || tag === "line" || tag === "text" ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== false && v !== undefined && v !== null) e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined && kid !== false) e.append(kid.nodeType ? kid : String(kid));
  return e;
}

export function json(value, open = false) {
  return h("details", { class: "json", open }, h("summary", {}, Array.isArray(value) ? `[${value.length}]` : value && typeof value === "object" ? `{${Object.keys(value).length}}` : "value"),
    h("pre", {}, JSON.stringify(value ?? null, null, 2)));
}

export function when(ts) { return ts ? new Date(ts).toLocaleTimeString() : ""; }

export function took(from, to) {
  if (!from || !to) return "";
  const ms = Date.parse(to) - Date.parse(from);
  return ms < 1000 ? `${ms} ms` : ms < 60000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60000)} min`;
}

export function say(message, kind = "info") {
  statusLine.textContent = message;
  statusLine.dataset.kind = kind;
}

// table([[title, row => cell], ...], rows, empty): a plain table, or the empty message.
export function table(columns, rows, empty = "nothing yet") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("table", {}, h("thead", {}, h("tr", {}, columns.map(([title]) => h("th", { scope: "col" }, title)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row)))))));
}

export function badge(state) { return h("span", { class: `badge state-${state}` }, state); }

export function card(title, value, sub) {
  return h("section", { class: "card" }, h("h3", {}, title), h("p", { class: "value" }, String(value)), h("p", { class: "sub" }, sub));
}

// A button that runs action once at a time and reports how it went on the status line.
export function control(label, action) {
  return h("button", { type: "button", class: "control", onclick: async (ev) => {
    const button = ev.currentTarget;
    button.disabled = true;
    try { const said = await action(); say(typeof said === "string" ? said : `${label.toLowerCase()}: done`); } catch (e) { say(`${label.toLowerCase()}: ${e.message}`, "error"); }
    button.disabled = false;
  } }, label);
}

// parseJson(text, what) -> the value, or throws an Error that names what is wrong.
export function parseJson(text, what) {
  try { return JSON.parse(text || "{}"); } catch (e) { throw new Error(`${what} is not JSON: ${e.message}`); }
}

// chart(points, {max, label, format}): a line over the last points, with its latest value.
export function chart(points, { label, format = (v) => v.toFixed(1), max } = {}) {
  if (points.length === 1) points = [points[0], points[0]]; // one sample: a level line
  const top = max ?? Math.max(1e-9, ...points);
  const step = points.length > 1 ? 300 / (points.length - 1) : 0;
  const line = points.map((v, i) => `${(i * step).toFixed(1)},${(58 - (Math.min(v, top) / top) * 54).toFixed(1)}`).join(" ");
  const last = points.length ? points[points.length - 1] : 0;
  return h("figure", { class: "chart" },
    h("figcaption", {}, label, " ", h("b", {}, format(last)), h("small", {}, ` (peak ${format(Math.max(0, ...points))})`)),
    h("svg", { class: "spark", viewBox: "0 0 300 60", preserveAspectRatio: "none", role: "img", "aria-label": `${label}: ${format(last)}` },
      h("polyline", { fill: "none", points: line || "0,58 300,58" })));
}
