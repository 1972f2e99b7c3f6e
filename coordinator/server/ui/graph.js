// A workflow definition drawn as a graph (SVG), top to bottom, one row per layer. Nested
// sequences (parallel branches, a map's body) are drawn inside their step's box, side by
// side. Each step node carries data-step and data-state, so an execution lights it up.

const SVG = "http://www.w3.org/2000/svg";
const NODE_W = 188, NODE_H = 46, GAP_X = 28, GAP_Y = 42, PAD = 16, TITLE = 24;

function targets(step) {
  // [target, label] pairs: next, branches, default, onError gotos.
  const out = [];
  const choose = (block, labelled) => {
    if (!block) return;
    if (typeof block === "string") { out.push([block, ""]); return; }
    for (const [label, to] of Object.entries(block.branches || {})) out.push([to, labelled ? label : label]);
    if (block.default) out.push([block.default, "default"]);
  };
  choose(step.next, true);
  choose(step.decision, true);
  const onError = step.onError;
  if (typeof onError === "string") out.push([onError, "on error"]);
  else if (onError && onError.next) out.push([onError.next, "on error"]);
  return out;
}

function children(step) {
  if (step.parallel) return (step.parallel.branches || []).map((b, i) => ({ name: b.name || `branch ${i + 1}`, steps: b.steps || [] }));
  if (step.map) return [{ name: `each of ${step.map.items || "items"}`, steps: step.map.steps || [] }];
  return [];
}

// layout(steps) -> {w, h, nodes: [{step, x, y, w, h, inner: [...]}], edges: [{from, to, label}]}
export function layout(steps) {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const layer = new Map();
  if (steps.length) {
    // Longest-path layering over forward edges (an edge back to a placed step is a loop).
    const order = [steps[0].id];
    layer.set(steps[0].id, 0);
    for (let i = 0; i < order.length; i++) {
      const id = order[i];
      for (const [to] of targets(byId.get(id))) {
        if (!byId.has(to)) continue;
        const depth = layer.get(id) + 1;
        if (!layer.has(to)) { layer.set(to, depth); order.push(to); }
        else if (layer.get(to) < depth && !reaches(byId, to, id)) { layer.set(to, depth); order.push(to); }
      }
    }
    let extra = Math.max(...layer.values()) + 1;
    for (const s of steps) if (!layer.has(s.id)) layer.set(s.id, extra++); // unreachable
  }
  const rows = [];
  for (const s of steps) (rows[layer.get(s.id)] ||= []).push(s);
  const nodes = [];
  let y = 0, width = 0;
  for (const row of rows.filter(Boolean)) {
    const boxes = row.map((step) => box(step));
    const rowW = boxes.reduce((a, b) => a + b.w, 0) + GAP_X * (boxes.length - 1);
    const rowH = Math.max(...boxes.map((b) => b.h));
    width = Math.max(width, rowW);
    boxes.forEach((b) => { b.y = y; b.rowW = rowW; });
    nodes.push(boxes);
    y += rowH + GAP_Y;
  }
  // Centre each row.
  const flat = [];
  for (const boxes of nodes) {
    let x = (width - boxes[0].rowW) / 2;
    for (const b of boxes) { b.x = x; x += b.w + GAP_X; flat.push(b); }
  }
  const edges = [];
  for (const s of steps) for (const [to, label] of targets(s)) if (byId.has(to)) edges.push({ from: s.id, to, label });
  return { w: Math.max(width, NODE_W), h: Math.max(y - GAP_Y, NODE_H), nodes: flat, edges };
}

function reaches(byId, from, goal, seen = new Set()) {
  if (from === goal) return true;
  if (seen.has(from)) return false;
  seen.add(from);
  return targets(byId.get(from)).some(([to]) => byId.has(to) && reaches(byId, to, goal, seen));
}

function box(step) {
  const subs = children(step);
  if (!subs.length) return { step, w: NODE_W, h: NODE_H, inner: [] };
  const inner = subs.map((sub) => ({ name: sub.name, ...layout(sub.steps) }));
  const w = inner.reduce((a, g) => a + g.w + 2 * PAD, 0) + GAP_X * (inner.length - 1) + 2 * PAD;
  const h = TITLE + Math.max(...inner.map((g) => g.h)) + 2 * PAD + TITLE;
  return { step, w: Math.max(w, NODE_W), h, inner };
}

function el(name, attrs = {}, parent) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

const ICONS = { task: "▣", decision: "◇", parallel: "⫴", map: "⟲", subworkflow: "⧉", wait: "⏱", event: "⚑", service: "⇄" };

function draw(g, graph, ox, oy) {
  const at = new Map();
  for (const n of graph.nodes) at.set(n.step.id, n);
  for (const e of graph.edges) {
    const a = at.get(e.from), b = at.get(e.to);
    const x1 = ox + a.x + a.w / 2, y1 = oy + a.y + a.h, x2 = ox + b.x + b.w / 2, y2 = oy + b.y;
    // Back edges (loops) and edges that skip a row go round the right, clear of the
    // nodes between; the others drop straight to the next row.
    const around = b.y <= a.y || b.y > a.y + a.h + GAP_Y + 1;
    const d = around
      ? `M${ox + a.x + a.w},${oy + a.y + a.h / 2} C${ox + a.x + a.w + 60},${oy + a.y + a.h / 2} ${ox + b.x + b.w + 60},${oy + b.y + b.h / 2} ${ox + b.x + b.w},${oy + b.y + b.h / 2}`
      : `M${x1},${y1} C${x1},${(y1 + y2) / 2} ${x2},${(y1 + y2) / 2} ${x2},${y2}`;
    const path = el("path", { d, class: "edge", "marker-end": "url(#arrow)", "data-from": e.from, "data-to": e.to }, g);
    if (e.label) {
      path.dataset.label = e.label;
      const lx = around ? Math.max(ox + a.x + a.w, ox + b.x + b.w) + 50 : (x1 + x2) / 2 + 4;
      const ly = around ? (oy + a.y + a.h / 2 + oy + b.y + b.h / 2) / 2 : (y1 + y2) / 2 - 2;
      const t = el("text", { x: lx, y: ly, class: "edge-label" }, g);
      t.textContent = e.label;
    }
  }
  for (const n of graph.nodes) {
    const s = n.step;
    const node = el("g", { class: `node type-${s.type || "task"}`, "data-step": s.id, "data-state": "pending", tabindex: "0", role: "img" }, g);
    node.setAttribute("aria-label", `${s.type || "task"} step ${s.id}`);
    el("rect", { x: ox + n.x, y: oy + n.y, width: n.w, height: n.h, rx: s.type === "decision" ? 14 : 6 }, node);
    const title = el("text", { x: ox + n.x + 10, y: oy + n.y + 19, class: "node-title" }, node);
    title.textContent = `${ICONS[s.type || "task"] || "▣"} ${s.id}`;
    const sub = el("text", { x: ox + n.x + 10, y: oy + n.y + 36, class: "node-sub" }, node);
    sub.textContent = s.capability || s.workflow || (s.subworkflow && s.subworkflow.workflow) || (s.service ? `${s.service}.${s.operation || ""}` : s.type || "");
    const t = el("title", {}, node);
    t.textContent = s.name || s.id;
    let x = ox + n.x + PAD;
    for (const inner of n.inner) {
      el("rect", { x, y: oy + n.y + TITLE + PAD, width: inner.w + 2 * PAD, height: inner.h + 2 * PAD + TITLE - 8, class: "lane", rx: 4 }, g);
      const label = el("text", { x: x + 6, y: oy + n.y + TITLE + PAD + 14, class: "lane-label" }, g);
      label.textContent = inner.name;
      draw(g, inner, x + PAD, oy + n.y + TITLE + PAD + TITLE);
      x += inner.w + 2 * PAD + GAP_X;
    }
  }
}

// render(definition) -> an <svg> element.
export function render(definition) {
  const graph = layout(definition.steps || []);
  const svg = el("svg", { viewBox: `-10 -10 ${graph.w + 100} ${graph.h + 20}`, class: "graph", role: "group" });
  svg.setAttribute("aria-label", `the graph of ${definition.name || "the workflow"}`);
  const defs = el("defs", {}, svg);
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, defs);
  el("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }, marker);
  draw(el("g", {}, svg), graph, 0, 0);
  svg.style.maxWidth = `${graph.w + 100}px`;
  return svg;
}

// The state each step event puts its node in.
export const STEP_STATES = {
  "step.started": "running", "step.completed": "completed", "step.failed": "failed",
  "step.retrying": "retrying", "step.skipped": "skipped", "step.fallback": "running",
};

export function light(svg, stepId, state) {
  const node = svg.querySelector(`g.node[data-step="${CSS.escape(stepId)}"]`);
  if (node) node.dataset.state = state;
}
