// Executions: the list, filtered and paged by the coordinator (workflow, status, start time,
// text search on id and input); the filters live in the URL, so a view can be shared.
import { call } from "./api.js";
import { STATUS, badge, h, main, table, took, when } from "./dom.js";

const PAGE = 50;
const SINCE = { "": "any time", "15m": "last 15 minutes", "1h": "last hour", "24h": "last day", "7d": "last week" };
const SPAN_MS = { m: 60e3, h: 3600e3, d: 86400e3 };

export function executionsTable(list, empty = "no executions") {
  return table([
    ["Execution", (e) => h("a", { href: `#/executions/${e.id || e.executionId}` }, h("code", {}, (e.id || e.executionId || "").slice(0, 12)))],
    ["Workflow", (e) => `${e.workflowName} v${e.workflowVersion ?? ""}`], ["Status", (e) => badge(STATUS(e.status))],
    ["Current steps", (e) => (e.currentStepIds || []).join(", ")],
    ["Started", (e) => when(e.startTime)], ["Took", (e) => took(e.startTime, e.endTime)],
  ], list, empty);
}

function go(params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v));
  location.hash = `#/executions?${query}`;
}

export async function executionsPage() {
  const params = Object.fromEntries(new URLSearchParams(location.hash.split("?")[1] || ""));
  const { status = "", workflow = "", since = "", q = "", page = "" } = params;
  const request = { workflowName: workflow, limit: PAGE, query: q, pageToken: page };
  if (status) request.statuses = [`EXECUTION_STATUS_${status.toUpperCase()}`];
  if (SINCE[since] && since) request.startedAfter = new Date(Date.now() - Number(since.slice(0, -1)) * SPAN_MS[since.slice(-1)]).toISOString();
  const [{ executions = [], nextPageToken = "" }, { workflows = [] }] = await Promise.all([
    call("ExecutionService", "ListExecutions", request), call("WorkflowService", "ListWorkflows").catch(() => ({})),
  ]);
  const pick = (key, options, label) => h("select", { "aria-label": label, onchange: (ev) => go({ ...params, [key]: ev.target.value, page: "" }) },
    Object.entries(options).map(([v, text]) => h("option", { value: v, selected: v === (params[key] || "") }, text)));
  const statuses = Object.fromEntries(["", "queued", "running", "paused", "completed", "failed", "cancelled"].map((s) => [s, s || "every status"]));
  const names = Object.fromEntries([["", "every workflow"], ...workflows.map((w) => [w.name, w.name])]);
  const search = h("input", { type: "search", name: "q", value: q, placeholder: "id or input contains…", "aria-label": "search executions by id or input" });
  const form = h("form", { class: "filters", role: "search", onsubmit: (ev) => { ev.preventDefault(); go({ ...params, q: search.value.trim(), page: "" }); } },
    pick("workflow", names, "workflow"), pick("status", statuses, "status"), pick("since", SINCE, "started"), search, h("button", { type: "submit" }, "Search"));
  // Earlier pages: the tokens that led here, kept in the tab so Previous walks back.
  const trail = JSON.parse(sessionStorage.getItem("agentmesh.pages") || "[]");
  const at = page ? trail.indexOf(page) : -1;
  const pager = h("nav", { class: "pager", "aria-label": "pages" },
    h("button", { type: "button", disabled: !page, onclick: () => go({ ...params, page: at > 0 ? trail[at - 1] : "" }) }, "Previous"),
    h("span", {}, `${executions.length} shown${nextPageToken ? ", more on the next page" : ""}`),
    h("button", { type: "button", disabled: !nextPageToken, onclick: () => {
      sessionStorage.setItem("agentmesh.pages", JSON.stringify([...trail.slice(0, at + 1), nextPageToken].slice(-50)));
      go({ ...params, page: nextPageToken });
    } }, "Next"));
  main.replaceChildren(h("h1", {}, "Executions"), form, executionsTable(executions, q || status || workflow || since ? "no execution matches" : "no executions"), pager);
}
