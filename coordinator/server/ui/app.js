// The AgentMesh dashboard: hash-routed pages over the Connect API, live by the SSE stream.
import { ApiError, call, events, session } from "./api.js";
import { STEP_STATES, light, render } from "./graph.js";

const main = document.getElementById("main");
const status = document.getElementById("status");
let closeStream = () => {};
let timer = 0;
// Who is signed in and what it may do in its namespace (GetCaller); null permissions: not
// known (a custom role without caller.read), so every control is offered and the API decides.
let caller = null;

async function who() {
  const key = `${session.token}|${session.namespace}`;
  if (caller && caller.key === key) return caller;
  try {
    const c = await call("RegistryService", "GetCaller");
    caller = { ...c, key, allowed: new Set(c.permissions || []) };
  } catch (e) {
    if (e.code === "unauthenticated") throw e;
    caller = { name: "", key, allowed: null };
  }
  document.getElementById("who").textContent = caller.authEnabled ? `${caller.name} · ${caller.namespace}` : "";
  document.getElementById("signout").hidden = !caller.authEnabled;
  return caller;
}

const can = (permission) => !caller || !caller.allowed || caller.allowed.has(permission);

const STATUS = (s) => (s || "").replace(/^(EXECUTION|AGENT)_STATUS_/, "").toLowerCase();

function h(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== false && v !== undefined && v !== null) e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined) e.append(kid.nodeType ? kid : String(kid));
  return e;
}

function json(value, open = false) {
  return h("details", { class: "json", open }, h("summary", {}, Array.isArray(value) ? `[${value.length}]` : "{…}"),
    h("pre", {}, JSON.stringify(value ?? null, null, 2)));
}

function when(ts) { return ts ? new Date(ts).toLocaleTimeString() : ""; }

function say(message, kind = "info") {
  status.textContent = message;
  status.dataset.kind = kind;
}

function table(columns, rows, empty = "nothing yet") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("table", {}, h("thead", {}, h("tr", {}, columns.map(([title]) => h("th", { scope: "col" }, title)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row)))))));
}

function badge(state) { return h("span", { class: `badge state-${state}` }, state); }

// ------------------------------------------------------------------ pages

async function overview() {
  const [info, system, agents, active] = await Promise.all([
    call("RegistryService", "GetCoordinatorInfo"), call("MetricsService", "GetSystemMetrics").catch(() => ({})),
    call("RegistryService", "ListAgents"), call("ExecutionService", "ListActiveExecutions"),
  ]);
  const list = agents.agents || [];
  const count = (s) => list.filter((a) => STATUS(a.status) === s).length;
  const rate = h("svg", { class: "spark", viewBox: "0 0 300 60", "aria-label": "events per second, last five minutes" });
  const buckets = new Array(60).fill(0);
  const draw = () => {
    const max = Math.max(1, ...buckets);
    rate.innerHTML = `<polyline fill="none" points="${buckets.map((v, i) => `${i * 5},${58 - (v / max) * 54}`).join(" ")}"/>`;
  };
  draw();
  closeStream = events({}, (e) => { buckets[buckets.length - 1]++; if (e.type.startsWith("agent.")) refresh(); });
  timer = setInterval(() => { buckets.shift(); buckets.push(0); draw(); }, 5000);
  let refreshing = false;
  async function refresh() {
    if (refreshing) return;
    refreshing = true;
    setTimeout(() => { refreshing = false; if (location.hash.startsWith("#/overview")) route(); }, 1000);
  }
  main.replaceChildren(
    h("h1", {}, "Overview"),
    h("div", { class: "cards" },
      card("Coordinator", info.coordinatorId, `store ${info.store}, v${info.version}`),
      card("Agents", `${count("idle") + count("busy")} online`, `${count("busy")} busy · ${count("offline")} offline · ${count("error")} error`),
      card("Active executions", (active.executions || []).length, ""),
      card("Tasks", `${(system.tasksPerSecond ?? 0).toFixed(1)}/s`,
        `${Object.values(system.queueSizes || {}).reduce((a, b) => a + Number(b), 0)} queued · ${((system.errorRate ?? 0) * 100).toFixed(1)}% errors`),
    ),
    h("h2", {}, "Events (5 s buckets)"), rate,
    h("h2", {}, "Active executions"),
    executionsTable(active.executions || []),
  );
}

function card(title, value, sub) {
  return h("section", { class: "card" }, h("h3", {}, title), h("p", { class: "value" }, String(value)), h("p", { class: "sub" }, sub));
}

async function agentsPage() {
  const { agents = [] } = await call("RegistryService", "ListAgents");
  const filter = h("input", { type: "search", placeholder: "filter by name, capability, status", "aria-label": "filter agents" });
  const holder = h("div");
  const show = () => {
    const q = filter.value.toLowerCase();
    const rows = agents.filter((a) => !q || JSON.stringify(a).toLowerCase().includes(q));
    holder.replaceChildren(table([
      ["Name", (a) => a.name], ["Status", (a) => badge(STATUS(a.status))],
      ["Load", (a) => `${a.taskCount ?? 0}/${a.maxConcurrency ?? "?"}`],
      ["Done", (a) => a.tasksCompleted ?? 0], ["Failed", (a) => a.tasksFailed ?? 0],
      ["Success", (a) => `${Math.round((a.successRate ?? 1) * 100)}%`],
      ["Avg", (a) => `${Math.round(a.averageTaskDurationMs ?? 0)} ms`],
      ["Capabilities", (a) => (a.capabilities || []).join(", ")],
      ["Labels", (a) => Object.entries(a.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ")],
      ["Last seen", (a) => when(a.lastSeenTime)], ["Id", (a) => h("code", {}, a.id)],
    ], rows, "no agents connected"));
  };
  filter.addEventListener("input", show);
  show();
  main.replaceChildren(h("h1", {}, "Agents"), filter, holder);
}

async function workflowsPage(name) {
  const { workflows = [] } = await call("WorkflowService", "ListWorkflows");
  const nav = h("ul", { class: "list" }, workflows.map((w) =>
    h("li", {}, h("a", { href: `#/workflows/${encodeURIComponent(w.name)}`, "aria-current": w.name === name ? "page" : false }, `${w.name} `, h("small", {}, w.version)))));
  const body = [h("h1", {}, "Workflows"), h("div", { class: "split" }, nav, h("div", { id: "workflow" }))];
  main.replaceChildren(...body);
  if (!name) return;
  const w = await call("WorkflowService", "GetWorkflow", { name });
  const input = h("textarea", { rows: 5, "aria-label": "input (JSON)" }, "{}");
  const start = h("button", { class: "control", onclick: async () => {
    let value;
    try { value = JSON.parse(input.value || "{}"); } catch (e) { say(`the input is not JSON: ${e.message}`, "error"); return; }
    try {
      const started = await call("ExecutionService", "StartWorkflow", { workflowName: name, input: value });
      location.hash = `#/executions/${started.id}`;
    } catch (e) { say(e.message, "error"); }
  } }, "Start");
  document.getElementById("workflow").replaceChildren(
    h("h2", {}, w.definition?.name || w.name, " ", h("small", {}, `version ${w.version}`)),
    h("p", {}, w.description || w.definition?.description || ""),
    h("div", { class: "graph-box" }, render(w.definition || {})),
    ...(can("executions.start") ? [h("h3", {}, "Start an execution"), input, start] : []),
    h("h3", {}, "Definition"), json(w.definition),
  );
}

async function executionsPage() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const statuses = params.get("status") ? [`EXECUTION_STATUS_${params.get("status").toUpperCase()}`] : [];
  const { executions = [] } = await call("ExecutionService", "ListExecutions", { workflowName: params.get("workflow") || "", statuses, limit: 200 });
  const select = h("select", { "aria-label": "status", onchange: () => { location.hash = `#/executions?status=${select.value}`; } },
    ["", "running", "paused", "completed", "failed", "cancelled"].map((s) => h("option", { value: s, selected: s === (params.get("status") || "") }, s || "every status")));
  const search = h("input", { type: "search", placeholder: "search ids", "aria-label": "search executions" });
  const holder = h("div", {}, executionsTable(executions));
  search.addEventListener("input", () => holder.replaceChildren(executionsTable(executions.filter((e) => JSON.stringify(e).includes(search.value)))));
  main.replaceChildren(h("h1", {}, "Executions"), h("div", { class: "filters" }, select, search), holder);
}

function executionsTable(list) {
  return table([
    ["Execution", (e) => h("a", { href: `#/executions/${e.id || e.executionId}` }, h("code", {}, (e.id || e.executionId || "").slice(0, 12)))],
    ["Workflow", (e) => e.workflowName], ["Status", (e) => badge(STATUS(e.status))],
    ["Started", (e) => when(e.startTime)], ["Ended", (e) => when(e.endTime)],
  ], list, "no executions");
}

async function executionPage(id) {
  const execution = await call("ExecutionService", "GetExecutionStatus", { executionId: id });
  const workflow = await call("WorkflowService", "GetWorkflow", { name: execution.workflowName, version: execution.workflowVersion }).catch(() => null);
  const svg = render(workflow?.definition || { steps: [] });
  const state = h("span", { id: "execution-state" }, badge(STATUS(execution.status)));
  const timeline = h("ol", { class: "timeline", "aria-live": "polite" });
  const controls = h("div", { class: "controls" },
    can("executions.pause") ? control("Pause", () => call("ExecutionService", "PauseWorkflow", { executionId: id })) : null,
    can("executions.resume") ? control("Resume", () => call("ExecutionService", "ResumeWorkflow", { executionId: id })) : null,
    can("executions.stop") ? control("Stop", () => call("ExecutionService", "StopWorkflow", { executionId: id, reason: "stopped from the dashboard" })) : null,
  );
  const data = h("div", { class: "data" });
  const showData = (x) => data.replaceChildren(
    h("h3", {}, "Input"), json(x.input), h("h3", {}, "Output"), json(x.output),
    h("h3", {}, "Variables"), json(x.variables), ...(x.error ? [h("h3", {}, "Error"), json(x.error, true)] : []));
  showData(execution);
  main.replaceChildren(
    h("h1", {}, "Execution ", h("code", {}, id)),
    h("p", {}, h("a", { href: `#/workflows/${encodeURIComponent(execution.workflowName)}` }, execution.workflowName), " · ", state),
    controls, h("div", { class: "graph-box" }, svg),
    h("div", { class: "split" }, h("section", {}, h("h2", {}, "Timeline"), timeline), h("section", {}, h("h2", {}, "Data"), data)),
  );
  const started = new Map();
  const completedAt = new Map();
  const onEvent = (e) => {
    const stepState = STEP_STATES[e.type];
    if (stepState && e.stepId) {
      light(svg, e.stepId, stepState);
      if (e.type === "step.completed") completedAt.set(e.stepId, completedAt.size);
      if (e.type === "step.started") {
        started.set(e.stepId, Date.parse(e.time));
        // The edge taken: the one from the step that completed last.
        let taken = null;
        for (const edge of svg.querySelectorAll(`path.edge[data-to="${CSS.escape(e.stepId)}"]`)) {
          const at = completedAt.get(edge.dataset.from);
          if (at !== undefined && (!taken || at > completedAt.get(taken.dataset.from))) taken = edge;
        }
        if (taken) taken.classList.add("taken");
      }
    }
    if (e.type === "task.waiting" && e.stepId) light(svg, e.stepId, "waiting");
    const took = e.type === "step.completed" && started.has(e.stepId) ? ` (${Date.parse(e.time) - started.get(e.stepId)} ms)` : "";
    timeline.append(h("li", { "data-type": e.type }, h("time", {}, when(e.time)), " ", h("b", {}, e.type), " ", e.stepId || "", e.agentId ? ` on ${e.agentId}` : "", took, e.message ? ` — ${e.message}` : ""));
    if (e.type.startsWith("execution.")) {
      call("ExecutionService", "GetExecutionStatus", { executionId: id }).then((x) => {
        state.replaceChildren(badge(STATUS(x.status)));
        showData(x);
        if (["completed", "failed", "cancelled"].includes(STATUS(x.status))) {
          for (const node of svg.querySelectorAll('g.node[data-state="pending"]')) node.dataset.state = "skipped";
        }
      });
    }
  };
  closeStream = events({ execution: id, from: "start" }, onEvent);
}

function control(label, action) {
  return h("button", { class: "control", onclick: async (ev) => {
    ev.target.disabled = true;
    try { await action(); say(`${label.toLowerCase()}: done`); } catch (e) { say(`${label.toLowerCase()}: ${e.message}`, "error"); }
    ev.target.disabled = false;
  } }, label);
}

async function integrationsPage() {
  const [hooks, services, dead] = await Promise.all([
    call("IntegrationService", "ListWebhooks").catch((e) => ({ error: e.message })),
    call("IntegrationService", "ListExternalServices").catch((e) => ({ error: e.message })),
    call("IntegrationService", "ListDeadLetters").catch((e) => ({ error: e.message })),
  ]);
  main.replaceChildren(
    h("h1", {}, "Integrations"),
    h("h2", {}, "Webhooks"), table([["Id", (w) => h("code", {}, w.id)], ["Events", (w) => (w.events || []).join(", ")], ["URL", (w) => w.url], ["Pending", (w) => w.pending ?? 0], ["Delivered", (w) => w.delivered ?? 0], ["Dead", (w) => w.deadLetters ?? 0]], hooks.webhooks || [], hooks.error || "no webhooks"),
    h("h2", {}, "Dead letters"), table([["Webhook", (d) => d.webhookId], ["Event", (d) => d.eventType], ["Attempts", (d) => d.attempts], ["Last error", (d) => d.lastError]], dead.deadLetters || [], dead.error || "none"),
    h("h2", {}, "External services"), table([["Id", (s) => s.id || s.serviceId], ["Base URL", (s) => s.baseUrl], ["Operations", (s) => Object.keys(s.operations || {}).join(", ")]], services.services || [], services.error || "no external services"),
  );
}

function signIn(why = "") {
  const token = h("input", { type: "password", id: "token", "aria-label": "token", autocomplete: "off" });
  const namespace = h("input", { type: "text", id: "namespace", "aria-label": "namespace", placeholder: "default", value: session.namespace });
  main.replaceChildren(h("h1", {}, "Sign in"), h("p", {}, why || "This coordinator needs a token."),
    h("form", { onsubmit: (ev) => { ev.preventDefault(); session.token = token.value.trim(); session.namespace = namespace.value.trim(); caller = null;
        // Back to the page that asked (hashchange routes), or to the overview.
        if (location.hash.startsWith("#/signin") || !location.hash) location.hash = "#/overview"; else route(); } },
      h("label", {}, "Token ", token), h("label", {}, "Namespace ", namespace), h("button", { type: "submit" }, "Sign in")));
  token.focus();
}

// ------------------------------------------------------------------ routing

async function route() {
  closeStream();
  closeStream = () => {};
  clearInterval(timer);
  const [path] = location.hash.replace(/^#\/?/, "").split("?");
  const [page, arg] = path.split("/").map(decodeURIComponent);
  for (const a of document.querySelectorAll("nav a")) a.setAttribute("aria-current", a.dataset.page === (page || "overview") ? "page" : "false");
  say("");
  try {
    if (page === "signin") return signIn();
    await who();
    if (page === "agents") return await agentsPage();
    if (page === "workflows") return await workflowsPage(arg);
    if (page === "executions" && arg) return await executionPage(arg);
    if (page === "executions") return await executionsPage();
    if (page === "integrations") return await integrationsPage();
    return await overview();
  } catch (e) {
    if (e instanceof ApiError && e.code === "unauthenticated") return signIn(e.message);
    say(e.message, "error");
  }
}

document.getElementById("theme").addEventListener("click", () => {
  const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  document.documentElement.dataset.theme = next;
  localStorage.setItem("agentmesh.theme", next);
});
document.getElementById("signout").addEventListener("click", () => { session.token = ""; caller = null; location.hash = "#/signin"; });
document.documentElement.dataset.theme = localStorage.getItem("agentmesh.theme") || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
window.addEventListener("hashchange", route);
route();
