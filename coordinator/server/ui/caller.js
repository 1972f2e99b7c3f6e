// Who is signed in and what it may do in its namespace (RegistryService/GetCaller): pages
// offer only what the principal may do; the API decides in any case.
import { call, session } from "./api.js";

// null permissions: not known (a custom role without caller.read), so every control is
// offered and the API answers.
let caller = null;

export async function who() {
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

export function forget() { caller = null; }

export const can = (permission) => !caller || !caller.allowed || caller.allowed.has(permission);
