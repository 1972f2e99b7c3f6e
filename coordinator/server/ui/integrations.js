// Integrations: webhooks with their delivery state and dead letters (redeliver), external
// services with breaker, rate limit and cache, and the workflows' triggers.
import { call } from "./api.js";
import { can } from "./caller.js";
import { badge, control, h, main, table, when } from "./dom.js";

export async function integrationsPage() {
  const soft = (p) => p.catch((e) => ({ error: e.message }));
  const [hooks, services, dead, triggers] = await Promise.all([
    soft(call("IntegrationService", "ListWebhooks")), soft(call("IntegrationService", "ListExternalServices")),
    soft(call("IntegrationService", "ListDeadLetters")), soft(call("IntegrationService", "ListTriggers")),
  ]);
  const manage = can("integrations.manage");
  const redeliver = (body, what) => control(what, async () => {
    const r = await call("IntegrationService", "RedeliverDeadLetters", body);
    setTimeout(() => { if (location.hash.startsWith("#/integrations")) integrationsPage(); }, 1000);
    return `redelivered ${r.redelivered ?? 0}`;
  });
  const letters = dead.deadLetters || [];
  main.replaceChildren(
    h("h1", {}, "Integrations"),
    h("h2", {}, "Webhooks"),
    table([["Id", (w) => h("code", {}, w.webhookId)], ["Event", (w) => w.event], ["URL", (w) => w.url],
      ["Pending", (w) => w.pending ?? 0], ["Delivered", (w) => w.delivered ?? 0], ["Dead letters", (w) => w.deadLetters ?? 0],
      ["Last error", (w) => w.lastError || ""],
      ["", (w) => (manage && (w.deadLetters ?? 0) > 0 ? redeliver({ webhookId: w.webhookId }, "Redeliver all") : "")]],
    hooks.webhooks || [], hooks.error || "no webhooks"),
    h("h2", {}, "Dead letters"),
    table([["Delivery", (d) => h("code", {}, d.deliveryId)], ["Webhook", (d) => d.webhookId], ["Event", (d) => d.eventType],
      ["Attempts", (d) => d.attempts], ["Failed", (d) => when(d.failedAt)], ["Last error", (d) => d.lastError],
      ["", (d) => (manage ? redeliver({ webhookId: d.webhookId, deliveryIds: [d.deliveryId] }, "Redeliver") : "")]],
    letters, dead.error || "none"),
    h("h2", {}, "External services"),
    table([["Name", (s) => s.config?.name], ["Base URL", (s) => s.config?.baseUrl], ["Breaker", (s) => badge(breaker(s.breakerState))],
      ["Rate limit", (s) => (s.config?.rateLimitPerSecond ? `${s.config.rateLimitPerSecond}/s, burst ${s.config.rateLimitBurst || 1}` : "none")],
      ["Calls", (s) => s.calls ?? 0], ["Cache hits / misses", (s) => `${s.cacheHits ?? 0} / ${s.cacheMisses ?? 0}`],
      ["Operations", (s) => Object.keys(s.config?.operations || {}).join(", ")]],
    services.services || [], services.error || "no external services"),
    h("h2", {}, "Triggers"),
    table([["Workflow", (t) => t.workflow], ["On", (t) => (t.cron ? `cron ${t.cron}` : `event ${t.event}`)], ["Filter", (t) => t.filter || ""],
      ["Next", (t) => when(t.nextFire)]], triggers.triggers || [], triggers.error || "no triggers"),
  );
}

function breaker(state) { return state || "closed"; }
