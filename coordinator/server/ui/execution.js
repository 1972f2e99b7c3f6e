// One execution: its graph lit live by step state, the steps with their attempts, agents and
// durations, the event log streaming, partial outputs of running tasks, the child
// executions, its data as collapsible JSON, and the controls the principal may use.
import { call, events } from "./api.js";
import { can } from "./caller.js";
import { STATUS, badge, control, h, json, main, onLeave, parseJson, say, table, took, when } from "./dom.js";
import { executionsTable } from "./executions.js";
import { STEP_STATES, light, render } from "./graph.js";

const FINISHED = ["completed", "failed", "cancelled"];

export async function executionPage(id) {
  let execution = await call("ExecutionService", "GetExecutionStatus", { executionId: id });
  const workflow = await call("WorkflowService", "GetWorkflow", { name: execution.workflowName, version: execution.workflowVersion }).catch(() => null);
  const svg = render(workflow?.definition || { steps: [] });
  const state = h("span", { id: "execution-state" }, badge(STATUS(execution.status)));
  const timeline = h("ol", { class: "timeline", "aria-live": "polite", "aria-label": "event log" });
  const stepsBox = h("div", { id: "steps" });
  const outputs = h("div", { id: "outputs" });
  const childrenBox = h("div", { id: "children" });
  const data = h("div", { class: "data" });
  const controls = h("div", { class: "controls" });
  const showData = (x) => data.replaceChildren(
    h("h3", {}, "Input"), json(x.input), h("h3", {}, "Output"), json(x.output),
    h("h3", {}, "Variables"), json(x.variables), ...(x.error ? [h("h3", {}, "Error"), json(x.error, true)] : []));
  const showControls = (x) => controls.replaceChildren(...controlsFor(x));
  showData(execution);
  showControls(execution);
  main.replaceChildren(
    h("h1", {}, "Execution ", h("code", {}, id)),
    h("p", {}, h("a", { href: `#/workflows/${encodeURIComponent(execution.workflowName)}` }, `${execution.workflowName} v${execution.workflowVersion}`), " · ", state,
      execution.parentExecutionId ? [" · child of ", h("a", { href: `#/executions/${execution.parentExecutionId}` }, h("code", {}, execution.parentExecutionId.slice(0, 12)))] : null),
    controls,
    // The graph stays in view on the left while the steps, the log and the data scroll.
    h("div", { class: "execution" }, h("div", { class: "graph-box" }, svg),
      h("div", {}, h("h2", {}, "Steps"), stepsBox, h("h2", {}, "Event log"), timeline, h("h2", {}, "Partial output"), outputs,
        h("h2", {}, "Child executions"), childrenBox, h("h2", {}, "Data"), data)),
  );

  // Steps: attempts, agents, durations, from the event stream.
  const steps = new Map(); // stepId -> {state, started, ended, attempts, agents:Set}
  const step = (sid) => steps.get(sid) || steps.set(sid, { state: "pending", started: "", ended: "", attempts: 0, agents: new Set() }).get(sid);
  const showSteps = () => stepsBox.replaceChildren(table([
    ["Step", ([sid]) => sid], ["State", ([, s]) => badge(s.state)], ["Attempts", ([, s]) => s.attempts || ""],
    ["Agent", ([, s]) => [...s.agents].join(", ")], ["Started", ([, s]) => when(s.started)], ["Took", ([, s]) => took(s.started, s.ended)],
  ], [...steps.entries()], "no step has started"));
  const streams = new Map(); // task id -> <pre>
  const showOutput = (e) => {
    let pre = streams.get(e.taskId);
    if (!pre) {
      pre = h("pre", { class: "stream", "data-step": e.stepId || "" });
      streams.set(e.taskId, pre);
      outputs.append(h("h3", {}, `${e.stepId || e.taskId} (attempt ${e.data?.attempt ?? 1})`), pre);
    }
    pre.textContent += e.data?.chunk ?? "";
  };
  outputs.append(h("p", { class: "empty" }, "none streamed"));
  let childTimer = 0;
  const showChildren = () => call("ExecutionService", "ListExecutions", { parentExecutionId: id, limit: 100 })
    .then((r) => childrenBox.replaceChildren(executionsTable(r.executions || [], "none"))).catch(() => {});
  showChildren();
  onLeave(() => clearTimeout(childTimer));

  const started = new Map();
  const completedAt = new Map();
  const onEvent = (e) => {
    const stepState = STEP_STATES[e.type];
    if (stepState && e.stepId) {
      light(svg, e.stepId, stepState);
      const s = step(e.stepId);
      s.state = stepState;
      if (e.type === "step.started") { s.started ||= e.time; s.ended = ""; }
      if (["step.completed", "step.failed", "step.skipped"].includes(e.type)) s.ended = e.time;
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
        if (!childTimer) childTimer = setTimeout(() => { childTimer = 0; showChildren(); }, 500);
      }
      showSteps();
    }
    if (e.stepId && e.type === "task.assigned") {
      const s = step(e.stepId);
      s.attempts = Math.max(s.attempts, Number(e.data?.attempt ?? 1));
      if (e.agentId) s.agents.add(e.agentId);
      showSteps();
    }
    if (e.type === "task.waiting" && e.stepId) { light(svg, e.stepId, "waiting"); step(e.stepId).state = "waiting"; showSteps(); }
    if (e.type === "task.output") { if (outputs.querySelector(".empty")) outputs.replaceChildren(); showOutput(e); return; }
    const ms = e.type === "step.completed" && started.has(e.stepId) ? ` (${Date.parse(e.time) - started.get(e.stepId)} ms)` : "";
    timeline.append(h("li", { "data-type": e.type }, h("time", {}, when(e.time)), " ", h("b", {}, e.type), " ", e.stepId || "", e.agentId ? ` on ${e.agentId}` : "", ms, e.message ? ` — ${e.message}` : ""));
    if (e.type.startsWith("execution.")) {
      call("ExecutionService", "GetExecutionStatus", { executionId: id }).then((x) => {
        execution = x;
        state.replaceChildren(badge(STATUS(x.status)));
        showData(x);
        showControls(x);
        if (FINISHED.includes(STATUS(x.status))) {
          for (const node of svg.querySelectorAll('g.node[data-state="pending"]')) node.dataset.state = "skipped";
          showChildren();
        }
      });
    }
  };
  showSteps();
  onLeave(events({ execution: id, from: "start" }, onEvent));
}

function controlsFor(x) {
  const status = STATUS(x.status);
  const id = x.id;
  const out = [];
  if (can("executions.pause") && ["running", "queued"].includes(status)) out.push(control("Pause", () => call("ExecutionService", "PauseWorkflow", { executionId: id })));
  if (can("executions.resume") && status === "paused") {
    out.push(control("Resume", () => call("ExecutionService", "ResumeWorkflow", { executionId: id })));
    const input = h("textarea", { rows: 3, "aria-label": "resume input (JSON)" }, "{}");
    out.push(h("details", { class: "inline" }, h("summary", {}, "Resume with input"), input,
      control("Resume with this input", () => call("ExecutionService", "ResumeWorkflow", { executionId: id, input: parseJson(input.value, "the resume input") }))));
  }
  if (can("executions.stop") && !FINISHED.includes(status)) out.push(control("Stop", () => call("ExecutionService", "StopWorkflow", { executionId: id, reason: "stopped from the dashboard" })));
  if (can("executions.start") && FINISHED.includes(status)) {
    // The engine has no retry-from-step: a failed or stopped run is run again, same input.
    out.push(control("Run again", async () => {
      const again = await call("ExecutionService", "StartWorkflow", { workflowName: x.workflowName, version: x.workflowVersion, input: x.input ?? {} });
      location.hash = `#/executions/${again.id}`;
      return `started ${again.id}`;
    }));
  }
  if (can("events.trigger") && !FINISHED.includes(status)) out.push(triggerForm());
  return out;
}

function triggerForm() {
  const name = h("input", { type: "text", "aria-label": "event name", placeholder: "event name", required: true });
  const key = h("input", { type: "text", "aria-label": "correlation key", placeholder: "correlation key (optional)" });
  const payload = h("textarea", { rows: 3, "aria-label": "event payload (JSON)" }, "{}");
  return h("details", { class: "inline" }, h("summary", {}, "Trigger an event"), name, key, payload,
    control("Send event", async () => {
      if (!name.value.trim()) throw new Error("name the event");
      const r = await call("IntegrationService", "TriggerEvent", { event: name.value.trim(), correlationKey: key.value.trim(), payload: parseJson(payload.value, "the payload") });
      return `event ${name.value.trim()}: delivered to ${r.delivered ?? 0} waiting execution(s)${(r.started || []).length ? `, started ${r.started.join(", ")}` : ""}`;
    }));
}
