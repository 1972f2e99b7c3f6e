// Workflows: definitions and their versions, each drawn as a graph, its metrics, and a
// start form whose input is checked against the definition's input schema before it goes.
import { call } from "./api.js";
import { can } from "./caller.js";
import { h, json, main, parseJson, say, table } from "./dom.js";
import { render } from "./graph.js";

// A starting input from a JSON Schema: each property's default, first enum value or an
// empty value of its type (required ones first).
export function template(schema) {
  if (!schema || schema.type !== "object" || !schema.properties) return {};
  const required = new Set(schema.required || []);
  const names = Object.keys(schema.properties).sort((a, b) => required.has(b) - required.has(a));
  const empty = { string: "", number: 0, integer: 0, boolean: false, array: [], object: {} };
  const out = {};
  for (const name of names) {
    const p = schema.properties[name] || {};
    if (!required.has(name) && p.default === undefined) continue;
    out[name] = p.default ?? (p.enum ? p.enum[0] : empty[Array.isArray(p.type) ? p.type[0] : p.type] ?? null);
  }
  return out;
}

// What is wrong with value against schema (the checks people trip on: required, types,
// enums, nested objects); [] when nothing is. The coordinator checks it fully on start.
export function problems(schema, value, at = "input") {
  if (!schema || typeof schema !== "object") return [];
  const out = [];
  const kind = (v) => (v === null ? "null" : Array.isArray(v) ? "array" : Number.isInteger(v) ? "integer" : typeof v);
  const types = schema.type ? [].concat(schema.type) : null;
  if (types && !types.some((t) => t === kind(value) || (t === "number" && kind(value) === "integer"))) {
    return [`${at} must be ${types.join(" or ")}, not ${kind(value)}`];
  }
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) out.push(`${at} must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(", ")}`);
  if (kind(value) === "object") {
    for (const name of schema.required || []) if (!(name in value)) out.push(`${at}.${name} is required`);
    for (const [name, sub] of Object.entries(schema.properties || {})) if (name in value) out.push(...problems(sub, value[name], `${at}.${name}`));
  }
  return out;
}

export async function workflowsPage(name, version = "") {
  const { workflows = [] } = await call("WorkflowService", "ListWorkflows");
  const nav = h("ul", { class: "list" }, workflows.map((w) =>
    h("li", {}, h("a", { href: `#/workflows/${encodeURIComponent(w.name)}`, "aria-current": w.name === name ? "page" : false }, `${w.name} `, h("small", {}, `v${w.version}`)))));
  const holder = h("div", { id: "workflow" }, workflows.length ? h("p", { class: "empty" }, "Pick a workflow.") : h("p", { class: "empty" }, "No workflow is defined."));
  main.replaceChildren(h("h1", {}, "Workflows"), h("div", { class: "split" }, nav, holder));
  if (!name) return;
  const info = workflows.find((w) => w.name === name);
  const [w, metrics] = await Promise.all([
    call("WorkflowService", "GetWorkflow", { name, version }),
    call("MetricsService", "GetWorkflowMetrics", { workflowName: name }).catch(() => null),
  ]);
  const schema = w.definition?.input;
  const versions = h("select", { "aria-label": "version", onchange: (ev) => { location.hash = `#/workflows/${encodeURIComponent(name)}/${encodeURIComponent(ev.target.value)}`; } },
    (info?.versions || [w.version]).slice().reverse().map((v) => h("option", { value: v, selected: v === w.version }, `version ${v}`)));
  holder.replaceChildren(
    h("h2", {}, w.definition?.name || w.name, " ", versions),
    h("p", {}, w.description || w.definition?.description || ""),
    h("div", { class: "graph-box" }, render(w.definition || {})),
    metrics ? metricsView(metrics) : null,
    can("executions.start") ? startForm(name, w.version, schema) : null,
    h("h3", {}, "Definition"), json(w.definition),
    h("p", {}, h("a", { href: `#/executions?workflow=${encodeURIComponent(name)}` }, `Executions of ${name}`)),
  );
}

function metricsView(m) {
  const steps = Object.entries(m.stepMetrics || {});
  return h("section", {}, h("h3", {}, "Metrics"),
    h("p", {}, `${m.totalExecutions ?? 0} executions · ${m.activeExecutions ?? 0} active · ${Math.round((m.successRate ?? 0) * 100)}% succeeded · ${Math.round(m.averageDurationMs ?? 0)} ms on average`),
    table([["Step", ([id]) => id], ["Runs", ([, s]) => s.count ?? 0], ["Average", ([, s]) => `${Math.round(s.averageDurationMs ?? 0)} ms`],
      ["Errors", ([, s]) => `${Math.round((s.errorRate ?? 0) * 100)}%`], ["Retries", ([, s]) => `${Math.round((s.retryRate ?? 0) * 100)}%`]], steps, "no step has run yet"));
}

function startForm(name, version, schema) {
  const input = h("textarea", { rows: 7, "aria-label": "input (JSON)", id: "start-input" }, JSON.stringify(template(schema), null, 2));
  const hint = h("p", { class: "sub", id: "start-problems", "aria-live": "polite" });
  const check = () => {
    let value;
    try { value = parseJson(input.value, "the input"); } catch (e) { hint.textContent = e.message; return null; }
    const found = problems(schema, value);
    hint.textContent = found.length ? found.join("; ") : schema ? "matches the input schema" : "";
    return found.length ? null : value;
  };
  input.addEventListener("input", check);
  const start = h("button", { type: "button", class: "control", onclick: async () => {
    const value = check();
    if (value === null) { say(`not started: ${hint.textContent}`, "error"); return; }
    try {
      const started = await call("ExecutionService", "StartWorkflow", { workflowName: name, version, input: value });
      location.hash = `#/executions/${started.id}`;
    } catch (e) { say(e.message, "error"); }
  } }, "Start");
  const fields = schema?.properties ? h("ul", { class: "schema" }, Object.entries(schema.properties).map(([k, p]) =>
    h("li", {}, h("code", {}, k), (schema.required || []).includes(k) ? " (required)" : "", p.type ? ` ${[].concat(p.type).join("|")}` : "",
      p.enum ? ` one of ${p.enum.join(", ")}` : "", p.description ? ` — ${p.description}` : ""))) : null;
  queueMicrotask(check);
  return h("section", {}, h("h3", {}, "Start an execution"), fields, input, hint, start);
}
