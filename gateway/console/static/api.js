// The console's only way to the platform: the public API, with the signed-in person's own token.
// Whatever the API refuses them, the console cannot show. Which parts to offer is read from the
// API's own OpenAPI document (each operation's x-roles), so the console and the API cannot disagree.
const BASE = "/api/v1/";
let session = JSON.parse(sessionStorage.getItem("console.session") || "null");
let roles = null; // "METHOD path-template" -> [role]

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function current() {
  return session;
}

async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  if (session) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method === "POST") headers["Idempotency-Key"] = crypto.randomUUID();
  const answer = await fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = answer.status === 204 ? null : await answer.json().catch(() => null);
  if (answer.status === 401 && session) {
    signOut();
    location.hash = "#/login";
  }
  if (!answer.ok) throw new ApiError(answer.status, data);
  return data;
}

export const get = (path) => request("GET", path);
export const post = (path, body = {}) => request("POST", path, body);

export async function signIn(username, password) {
  const token = await request("POST", "auth/token", { username, password });
  session = { token: token.access_token };
  const me = await get("me");
  session = { token: token.access_token, me };
  sessionStorage.setItem("console.session", JSON.stringify(session));
  return me;
}

export function signOut() {
  session = null;
  sessionStorage.removeItem("console.session");
}

export async function loadRoles() {
  if (roles) return roles;
  const doc = await (await fetch(BASE + "openapi.json")).json();
  roles = {};
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      if (operation["x-roles"]) roles[`${method.toUpperCase()} ${path.replace(/^\/api\/v1\//, "")}`] = operation["x-roles"];
    }
  }
  return roles;
}

// May the signed-in role call this endpoint ("GET reports/pipeline", "POST quotes/{quote_id}/approve")?
export function may(operation) {
  const allowed = roles && roles[operation];
  return Boolean(session && session.me && allowed && allowed.includes(session.me.role));
}
