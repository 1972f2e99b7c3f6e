// The AgentMesh dashboard: hash-routed pages over the Connect API, live by the SSE stream.
// Each page is a module; this one routes, signs in and out, and switches the theme.
import { ApiError, session } from "./api.js";
import { agentsPage } from "./agents.js";
import { forget, who } from "./caller.js";
import { h, leave, main, say } from "./dom.js";
import { executionPage } from "./execution.js";
import { executionsPage } from "./executions.js";
import { integrationsPage } from "./integrations.js";
import { overview } from "./overview.js";
import { workflowsPage } from "./workflows.js";

function signIn(why = "") {
  const token = h("input", { type: "password", id: "token", "aria-label": "token", autocomplete: "off" });
  const namespace = h("input", { type: "text", id: "namespace", "aria-label": "namespace", placeholder: "default", value: session.namespace });
  main.replaceChildren(h("h1", {}, "Sign in"), h("p", {}, why || "This coordinator needs a token."),
    h("form", { onsubmit: (ev) => { ev.preventDefault(); session.token = token.value.trim(); session.namespace = namespace.value.trim(); forget();
        // Back to the page that asked (hashchange routes), or to the overview.
        if (location.hash.startsWith("#/signin") || !location.hash) location.hash = "#/overview"; else route(); } },
      h("label", {}, "Token ", token), h("label", {}, "Namespace ", namespace), h("button", { type: "submit" }, "Sign in")));
  token.focus();
}

async function route() {
  leave();
  window.scrollTo(0, 0);
  const [path] = location.hash.replace(/^#\/?/, "").split("?");
  const [page, arg, more] = path.split("/").map(decodeURIComponent);
  for (const a of document.querySelectorAll("nav a")) a.setAttribute("aria-current", a.dataset.page === (page || "overview") ? "page" : "false");
  say("");
  try {
    if (page === "signin") return signIn();
    await who();
    if (page === "agents") return await agentsPage();
    if (page === "workflows") return await workflowsPage(arg, more || "");
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
document.getElementById("signout").addEventListener("click", () => { session.token = ""; forget(); location.hash = "#/signin"; });
document.documentElement.dataset.theme = localStorage.getItem("agentmesh.theme") || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
window.addEventListener("hashchange", route);
route();
