// Agents: the live table of AgentInfo, filtered by text and status, refreshed on agent events.
import { call, events } from "./api.js";
import { STATUS, badge, h, main, onLeave, table, when } from "./dom.js";

export async function agentsPage() {
  let agents = (await call("RegistryService", "ListAgents")).agents || [];
  const filter = h("input", { type: "search", placeholder: "filter by name, capability, label", "aria-label": "filter agents" });
  const status = h("select", { "aria-label": "agent status" }, ["", "online", "busy", "draining", "offline", "error"].map((s) => h("option", { value: s }, s || "every status")));
  const holder = h("div");
  const show = () => {
    const q = filter.value.toLowerCase();
    const rows = agents.filter((a) => (!q || JSON.stringify(a).toLowerCase().includes(q)) && (!status.value || STATUS(a.status) === status.value));
    holder.replaceChildren(table([
      ["Name", (a) => a.name], ["Status", (a) => badge(STATUS(a.status))],
      ["Load", (a) => `${a.taskCount ?? 0}/${a.maxConcurrency ?? "?"}`],
      ["Done", (a) => a.tasksCompleted ?? 0], ["Failed", (a) => a.tasksFailed ?? 0],
      ["Success", (a) => `${Math.round((a.successRate ?? 1) * 100)}%`],
      ["Avg", (a) => `${Math.round(a.averageTaskDurationMs ?? 0)} ms`],
      ["Capabilities", (a) => (a.capabilities || []).join(", ")],
      ["Labels", (a) => Object.entries(a.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ")],
      ["Last seen", (a) => when(a.lastSeenTime)], ["Id", (a) => h("code", {}, a.id)],
    ], rows, agents.length ? "no agent matches" : "no agents connected"));
  };
  filter.addEventListener("input", show);
  status.addEventListener("change", show);
  // Agent events refresh the table, at most once a second.
  let pending = 0;
  onLeave(events({ types: "agent.*" }, () => {
    if (pending) return;
    pending = setTimeout(async () => {
      pending = 0;
      agents = (await call("RegistryService", "ListAgents").catch(() => ({ agents }))).agents || [];
      show();
    }, 1000);
  }));
  onLeave(() => clearTimeout(pending));
  show();
  main.replaceChildren(h("h1", {}, "Agents"), h("div", { class: "filters" }, filter, status), holder);
}
