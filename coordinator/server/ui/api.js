// The dashboard's only way to the coordinator: the Connect protocol (JSON) and the SSE
// event stream, both on this origin, with the signed-in token and namespace.

const TOKEN_KEY = "agentmesh.token";
const NAMESPACE_KEY = "agentmesh.namespace";

export class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY) || ""; },
  set token(v) { v ? sessionStorage.setItem(TOKEN_KEY, v) : sessionStorage.removeItem(TOKEN_KEY); },
  get namespace() { return sessionStorage.getItem(NAMESPACE_KEY) || ""; },
  set namespace(v) { v ? sessionStorage.setItem(NAMESPACE_KEY, v) : sessionStorage.removeItem(NAMESPACE_KEY); },
};

function headers(extra = {}) {
  const h = { ...extra };
  if (session.token) h["Authorization"] = `Bearer ${session.token}`;
  if (session.namespace) h["AgentMesh-Namespace"] = session.namespace;
  return h;
}

// call("ExecutionService", "PauseWorkflow", {executionId}) -> the response message (JSON).
export async function call(service, method, body = {}, { timeoutMs } = {}) {
  const extra = { "Content-Type": "application/json", "Connect-Protocol-Version": "1" };
  if (timeoutMs) extra["Connect-Timeout-Ms"] = String(timeoutMs);
  let response;
  try {
    response = await fetch(`/agentmesh.v1.${service}/${method}`, {
      method: "POST", headers: headers(extra), body: JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError("unavailable", `the coordinator cannot be reached (${e.message})`, 0);
  }
  const text = await response.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch { data = { message: text }; }
  if (!response.ok) throw new ApiError(data.code || "unknown", data.message || text, response.status);
  return data;
}

// events({execution, types, from}, onEvent, onEnd) -> a function that closes the stream.
// fetch rather than EventSource, so the token goes in a header, not the URL.
export function events(query, onEvent, onEnd = () => {}) {
  const controller = new AbortController();
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== "") params.set(k, v);
  let last = "";
  const run = async () => {
    const response = await fetch(`/v1/events?${params}`, {
      headers: headers(last ? { "Last-Event-ID": last } : {}), signal: controller.signal,
    });
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      throw new ApiError(data.code || "unknown", data.message || response.statusText, response.status);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { code: "unavailable", message: "the stream ended" };
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const fields = {};
        for (const line of block.split("\n")) {
          if (!line || line.startsWith(":")) continue;
          const at = line.indexOf(": ");
          if (at > 0) fields[line.slice(0, at)] = line.slice(at + 2);
        }
        if (fields.event === "end") return JSON.parse(fields.data || "{}");
        if (fields.data && fields.id) {
          last = fields.id;
          onEvent(JSON.parse(fields.data));
        }
      }
    }
  };
  const loop = async () => {
    for (;;) {
      try {
        const end = await run();
        if (!end.code || query.stop_at_head) { onEnd(end); return; }
      } catch (e) {
        if (controller.signal.aborted) return;
        if (e instanceof ApiError && e.status && e.status < 500 && e.status !== 429) { onEnd(e); return; }
      }
      if (controller.signal.aborted) return;
      await new Promise((r) => setTimeout(r, 1000)); // then resume after the last event
    }
  };
  loop();
  return () => controller.abort();
}
