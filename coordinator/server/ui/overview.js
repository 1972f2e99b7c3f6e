// Overview: health, throughput and error rate over the last minutes (live), queue depth per
// capability, agents online/busy/offline, active executions.
import { call, events } from "./api.js";
import { STATUS, card, chart, h, main, onLeave, table } from "./dom.js";
import { executionsTable } from "./executions.js";

const SAMPLE_MS = 5000;
const KEEP = 60; // five minutes of samples
// Kept while the page is open in the tab, so coming back shows the minutes already seen.
const history = { tasks: [], errors: [], latency: [], events: [0] };

function push(series, value) {
  series.push(value);
  if (series.length > KEEP) series.shift();
}

export async function overview() {
  const [info, system, agents, active] = await Promise.all([
    call("RegistryService", "GetCoordinatorInfo"), call("MetricsService", "GetSystemMetrics").catch(() => null),
    call("RegistryService", "ListAgents"), call("ExecutionService", "ListActiveExecutions"),
  ]);
  const list = agents.agents || [];
  const count = (s) => list.filter((a) => STATUS(a.status) === s).length;
  const charts = h("div", { class: "charts" });
  const queues = h("div");
  const cards = h("div", { class: "cards" });
  const show = (m) => {
    const queued = Object.values(m?.queueSizes || {}).reduce((a, b) => a + Number(b), 0);
    cards.replaceChildren(
      card("Coordinator", info.coordinatorId, `store ${info.store} · v${info.version} · ${STATUS(m?.healthStatus) || "health unknown"}`),
      card("Agents", `${count("online") + count("busy") + count("draining")} online`, `${count("busy")} busy · ${count("draining")} draining · ${count("offline")} offline · ${count("error")} error`),
      card("Active executions", m ? Number(m.activeWorkflows ?? 0) : (active.executions || []).length, ""),
      card("Tasks", `${(m?.tasksPerSecond ?? 0).toFixed(1)}/s`, `${queued} queued · ${((m?.errorRate ?? 0) * 100).toFixed(1)}% errors · ${Math.round(m?.avgTaskLatencyMs ?? 0)} ms avg`),
    );
    charts.replaceChildren(
      chart(history.tasks, { label: "Tasks per second" }),
      chart(history.errors, { label: "Error rate", format: (v) => `${(v * 100).toFixed(1)}%`, max: Math.max(0.05, ...history.errors) }),
      chart(history.latency, { label: "Average task latency", format: (v) => `${Math.round(v)} ms` }),
      chart(history.events, { label: "Events per 5 s", format: (v) => String(v) }),
    );
    const sizes = Object.entries(m?.queueSizes || {}).sort((a, b) => Number(b[1]) - Number(a[1]));
    const serving = (cap) => list.filter((a) => (a.capabilities || []).includes(cap) && STATUS(a.status) !== "offline").length;
    queues.replaceChildren(table([["Capability", ([c]) => c], ["Queued", ([, n]) => Number(n)], ["Agents serving it", ([c]) => serving(c)]],
      sizes, m ? "no task is waiting for an agent" : "metrics are not readable with this token"));
  };
  const sample = (m) => {
    if (!m) return;
    push(history.tasks, m.tasksPerSecond ?? 0);
    push(history.errors, m.errorRate ?? 0);
    push(history.latency, m.avgTaskLatencyMs ?? 0);
  };
  sample(system);
  show(system);
  const timer = setInterval(async () => {
    push(history.events, 0);
    const m = await call("MetricsService", "GetSystemMetrics").catch(() => null);
    sample(m);
    show(m);
  }, SAMPLE_MS);
  onLeave(() => clearInterval(timer));
  onLeave(events({}, () => { history.events[history.events.length - 1]++; }));
  main.replaceChildren(
    h("h1", {}, "Overview"), cards,
    h("h2", {}, "The last minutes"), charts,
    h("h2", {}, "Queue depth per capability"), queues,
    h("h2", {}, "Active executions"), executionsTable(active.executions || []),
  );
}
