// The sales console: sign-in, my work (a rep's lists, a manager's approvals inbox), dashboards, the
// customer 360° page and the order timeline. Every figure comes from /api/v1 as the signed-in person;
// a part is offered only when their role may call the endpoint behind it (api.may, from x-roles).
import { ApiError, current, get, loadRoles, may, post, signIn, signOut } from "./api.js";
import { language, t, toggleLanguage } from "./i18n.js";

const main = document.getElementById("main");

// -- DOM helpers: text is always set as text, never parsed as HTML ------------------------------------
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const money = (value) => (value === null || value === undefined ? "—" : Number(value).toLocaleString(
  language() === "zh" ? "zh-CN" : "en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
const when = (value) => (value ? new Date(value).toLocaleString(language() === "zh" ? "zh-CN" : "en-GB",
  { dateStyle: "short", timeStyle: "short" }) : "—");
const day = (value) => (value ? String(value).slice(0, 10) : "—");

function card(title, testid, ...body) {
  return h("section", { class: "card", "data-testid": testid }, h("h2", {}, title), ...body);
}

function table(columns, rows, testid) {
  if (!rows.length) return h("p", { class: "empty", "data-testid": testid && `${testid}-empty` }, t("none"));
  return h("table", { "data-testid": testid },
    h("thead", {}, h("tr", {}, columns.map(([label, , cls]) => h("th", { class: cls }, label)))),
    h("tbody", {}, rows.map((row) => h("tr", { dataset: { id: row.id || "" } },
      columns.map(([, cell, cls]) => h("td", { class: cls }, cell(row)))))));
}

function partialMarker(body) {
  if (!body || !body.partial) return null;
  return h("div", { class: "partial", role: "status", "data-testid": "partial" },
    `${t("partial")}: ${body.unavailable.map((u) => `${u.service} (${u.parts.join(", ")})`).join("; ")}`);
}

function failure(error) {
  if (error instanceof ApiError && error.status === 404) return h("div", { class: "error", "data-testid": "not-found" }, t("not_found"));
  return h("div", { class: "error", "data-testid": "error" }, `${t("error")}: ${error.message}`);
}

const customerLink = (id, name) => (id ? h("a", { href: `#/customers/${id}` }, name || id) : name || "—");
const orderLink = (id, number) => h("a", { href: `#/orders/${id}` }, number || id);

// -- pages --------------------------------------------------------------------------------------------
function loginPage() {
  const error = h("p", { class: "error", hidden: true, "data-testid": "login-error" }, t("bad_login"));
  const form = h("form", { class: "login", "data-testid": "login" },
    h("h1", {}, t("title")),
    h("label", {}, t("username"), h("input", { name: "username", autocomplete: "username", required: true })),
    h("label", {}, t("password"), h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    error,
    h("button", { class: "primary", type: "submit" }, t("signin")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await signIn(form.username.value, form.password.value);
      location.hash = "#/work";
    } catch (e) {
      error.hidden = false;
    }
  });
  return form;
}

async function workPage() {
  const me = current().me;
  const page = h("div", { "data-testid": "work" });
  const jobs = []; // [title, testid, the section being built]
  if (may("GET me/approvals")) jobs.push(["inbox", "inbox", inbox()]);
  if (me.role === "sales_rep" || me.role === "sales_manager") {
    if (may("GET customers")) jobs.push(["due_contact", "due-contact", dueForContact(me)]);
    if (may("GET visits")) jobs.push(["visits_to_log", "visits-to-log", visitsToLog(me)]);
    if (may("GET opportunities")) jobs.push(["open_opportunities", "open-opportunities", openOpportunities(me)]);
  }
  if (may("GET orders")) jobs.push(["held_orders", "credit-hold", creditHolds()]);
  // a section whose service is down says so under its title; the others still show
  const sections = await Promise.all(jobs.map(([title, testid, job]) => job.catch((e) => card(t(title), testid, failure(e)))));
  page.append(...sections);
  return page;
}

async function dueForContact(me) {
  const { items } = await get(`customers?owner=${me.staff_id}&limit=200`);
  const soon = Date.now() + 7 * 86400e3;
  const due = items.filter((c) => c.contact_due_by && new Date(c.contact_due_by).getTime() <= soon)
    .sort((a, b) => a.contact_due_by.localeCompare(b.contact_due_by));
  return card(t("due_contact"), "due-contact", table([
    [t("customer"), (c) => customerLink(c.id, c.name)],
    [t("number"), (c) => c.number],
    [t("due_by"), (c) => h("span", { class: new Date(c.contact_due_by) < new Date() ? "overdue" : "" }, when(c.contact_due_by))],
  ], due, "due-contact-table"));
}

async function visitsToLog(me) {
  const { items } = await get(`visits?owner=${me.staff_id}&limit=200`);
  const open = items.filter((v) => ["approved", "in_field", "returned"].includes(v.state))
    .sort((a, b) => String(a.log_due_by || a.planned_at).localeCompare(String(b.log_due_by || b.planned_at)));
  return card(t("visits_to_log"), "visits-to-log", table([
    [t("number"), (v) => v.number],
    [t("customer"), (v) => customerLink(v.customer_id, v.customer_name)],
    [t("planned_at"), (v) => when(v.planned_at)],
    [t("purpose"), (v) => v.purpose],
    [t("log_due_by"), (v) => h("span", { class: v.log_overdue ? "late" : "" }, when(v.log_due_by))],
  ], open, "visits-table"));
}

async function openOpportunities(me) {
  const { items } = await get(`opportunities?owner=${me.staff_id}&open=true&limit=200`);
  return card(t("open_opportunities"), "open-opportunities", table([
    [t("title_col"), (o) => o.title],
    [t("customer"), (o) => customerLink(o.customer_id, o.customer_name)],
    [t("stage"), (o) => t(o.stage)],
    [t("amount"), (o) => money(o.expected_amount), "num"],
    [t("probability"), (o) => o.probability, "num"],
    [t("expected_close"), (o) => day(o.expected_close)],
  ], items, "opportunities-table"));
}

async function creditHolds() {
  const { items } = await get("orders?status=credit_hold&limit=200");
  return card(t("held_orders"), "credit-hold", table([
    [t("order"), (o) => orderLink(o.id, o.number)],
    [t("customer"), (o) => customerLink(o.customer_id, o.customer_name)],
    [t("amount"), (o) => money(o.total), "num"],
    [t("since"), (o) => when(o.credit_held_at)],
  ], items, "credit-hold-table"));
}

// kind -> (the approve, reject or release endpoints as the OpenAPI document names them)
const DECISIONS = {
  quote: { approve: "quotes/{quote_id}/approve", reject: "quotes/{quote_id}/reject" },
  contract: { approve: "contracts/{contract_id}/approve", reject: "contracts/{contract_id}/reject" },
  return: { approve: "returns/{return_id}/approve", reject: "returns/{return_id}/reject" },
  loan: { approve: "loans/{loan_id}/approve", reject: "loans/{loan_id}/reject" },
  visit: { approve: "visits/{visit_id}/approve", reject: "visits/{visit_id}/reject" },
  proposal: { approve: "proposals/{proposal_id}/approve", reject: "proposals/{proposal_id}/reject" },
  credit_release: { release: "orders/{order_id}/release-credit-hold" },
};

async function inbox() {
  const body = await get("me/approvals");
  const decision = (item) => {
    const comment = h("input", { name: "comment", placeholder: t("comment"), "aria-label": t("comment") });
    const outcome = h("span", { class: "muted", "data-testid": "outcome" });
    const act = (action) => async () => {
      try {
        const text = comment.value.trim();
        const payload = action === "release" ? { reason: text || t("release") } : (text ? { comment: text } : {});
        const answer = await post(`${item.decide}/${action === "release" ? "release-credit-hold" : action}`, payload);
        const status = answer.status || answer.state;
        controls.replaceChildren(h("span", { "data-testid": "decided", "data-status": status }, `${t("decided")}: ${t(status)}`));
      } catch (e) {
        outcome.textContent = e.message;
      }
    };
    const buttons = Object.entries(DECISIONS[item.kind]).filter(([, op]) => may(`POST ${op}`))
      .map(([action]) => h("button", { type: "button", class: action === "reject" ? "reject" : "approve",
        "data-action": action, onclick: act(action) }, t(action)));
    const controls = h("div", { class: "decision" }, comment, buttons, outcome);
    return controls;
  };
  return card(t("inbox"), "inbox", partialMarker(body), table([
    [t("kind"), (i) => t(i.kind)],
    [t("number"), (i) => (i.kind === "credit_release" ? orderLink(i.id, i.number) : i.number)],
    [t("customer"), (i) => customerLink(i.customer_id, i.customer_name)],
    [t("amount"), (i) => money(i.amount), "num"],
    [t("step"), (i) => t(i.step)],
    [t("reason"), (i) => (i.kind === "credit_release" ? t(i.reason) : i.reason || "—")],
    [t("since"), (i) => when(i.since)],
    ["", decision],
  ], body.items, "inbox-table"));
}

// -- dashboards ---------------------------------------------------------------------------------------
function chart(id, title, build) {
  const box = h("div", { class: "chart", id: `chart-${id}`, "data-chart": id });
  const section = card(title, `dash-${id}`, box);
  const draw = async () => {
    if (!window.echarts) {
      box.replaceWith(h("p", { class: "error" }, t("no_charts")));
      return;
    }
    try {
      const { option, body } = await build();
      const marker = partialMarker(body);
      if (marker) section.insertBefore(marker, box);
      const instance = window.echarts.init(box, null, { renderer: "canvas" });
      instance.setOption(Object.assign({ animation: false, tooltip: { trigger: "axis" }, legend: {} }, option));
      box.dataset.ready = "true";
    } catch (e) {
      box.replaceWith(failure(e));
    }
  };
  return { section, draw };
}

const num = (value) => (value === null || value === undefined ? null : Number(value));

function targetVsAchieved(groups, label) {
  return {
    xAxis: { type: "category", data: groups.map(label) },
    yAxis: { type: "value" },
    series: [
      { name: t("target"), type: "bar", data: groups.map((g) => num(g.target)) },
      { name: t("achieved"), type: "bar", data: groups.map((g) => num(g.ordered)) },
    ],
  };
}

async function dashboardsPage(chosen) {
  const thisYear = new Date().getFullYear();
  const year = Number(chosen || thisYear);
  const picker = h("select", { name: "year", "aria-label": t("period"),
    onchange: (e) => { location.hash = `#/dashboards/${e.target.value}`; } },
  [thisYear, thisYear - 1, thisYear - 2].map((y) => h("option", { value: y, selected: y === year }, y)));
  const page = h("div", { "data-testid": "dashboards" }, h("p", { class: "muted" }, `${t("period")}: `, picker));
  const grid = h("div", { class: "grid" });
  page.append(grid);
  const charts = [];
  if (may("GET reports/sales-performance")) {
    charts.push(chart("by_rep", t("by_rep"), async () => {
      const body = await get(`reports/sales-performance?period=${year}&group_by=rep`);
      return { body, option: targetVsAchieved(body.groups, (g) => g.name || g.key || "—") };
    }));
    charts.push(chart("by_region", t("by_region"), async () => {
      const body = await get(`reports/sales-performance?period=${year}&group_by=region`);
      return { body, option: targetVsAchieved(body.groups, (g) => g.name || g.key || "—") };
    }));
    charts.push(chart("by_month", t("by_month"), async () => {
      const last = year === thisYear ? new Date().getMonth() + 1 : 12;
      const months = Array.from({ length: last }, (_, i) => `${year}-${String(i + 1).padStart(2, "0")}`);
      const answers = await Promise.all(months.map((m) => get(`reports/sales-performance?period=${m}&group_by=rep`)));
      const partial = answers.find((a) => a.partial);
      return { body: partial, option: targetVsAchieved(answers.map((a) => Object.assign({ month: a.period }, a.totals)), (g) => g.month) };
    }));
  }
  if (may("GET reports/pipeline")) {
    charts.push(chart("pipeline", t("pipeline"), async () => {
      const body = await get("reports/pipeline?group_by=rep");
      const stages = ["identified", "qualified", "proposal", "negotiation"];
      const amounts = stages.map((s) => body.groups.reduce((sum, g) => sum + Number((g.stages[s] || {}).amount || 0), 0));
      return { body, option: { tooltip: { trigger: "item" }, series: [{ name: t("pipeline"), type: "funnel", sort: "none",
        minSize: "8%", label: { show: true, position: "inside", formatter: (p) => `${p.name}  ${money(p.value)}` },
        data: stages.map((s, i) => ({ name: t(s), value: amounts[i] })) }] } };
    }));
  }
  if (may("GET reports/receivables-aging")) {
    charts.push(chart("aging", t("aging"), async () => {
      const body = await get("reports/receivables-aging");
      const buckets = [["current", "current"], ["days_1_30", "d1_30"], ["days_31_60", "d31_60"], ["days_61_90", "d61_90"], ["days_over_90", "d90"]];
      return { body, option: { xAxis: { type: "category", data: buckets.map(([, label]) => t(label)) }, yAxis: { type: "value" },
        series: [{ name: t("receivable"), type: "bar", data: buckets.map(([key]) => num(body.totals[key])) }] } };
    }));
  }
  if (may("GET reports/osb-cycle")) {
    charts.push(chart("osb", t("osb"), async () => {
      const body = await get(`reports/osb-cycle?period=${year}`);
      const steps = body.steps;
      return { body, option: { xAxis: { type: "category", data: steps.map((s) => t(s)) }, yAxis: { type: "value" },
        series: [{ name: t("osb"), type: "bar", data: steps.map((s) => num((body.totals.steps[s] || {}).median_days)) }] } };
    }));
  }
  if (may("GET reports/service-sla")) {
    charts.push(chart("sla", t("sla"), async () => {
      const body = await get(`reports/service-sla?period=${year}&group_by=rep`);
      return { body, option: { xAxis: { type: "category", data: body.groups.map((g) => g.label || g.key || "—") },
        yAxis: { type: "value", max: 100 },
        series: [{ name: t("compliance"), type: "bar", data: body.groups.map((g) => (g.sla_compliance === null ? null : Number(g.sla_compliance) * 100)) },
          { name: t("resolved"), type: "line", data: body.groups.map((g) => g.resolved) }] } };
    }));
  }
  for (const { section } of charts) grid.append(section);
  // drawn once in the page, so each chart knows its size
  setTimeout(() => charts.forEach(({ draw }) => draw()), 0);
  return page;
}

// -- the customer 360° and the order timeline ----------------------------------------------------------
async function customersPage() {
  const { items } = await get("customers?limit=200");
  return card(t("customers"), "customers", table([
    [t("customer"), (c) => customerLink(c.id, c.name)],
    [t("number"), (c) => c.number],
    [t("owner"), (c) => c.owner_name || "—"],
    [t("region"), (c) => c.region],
    [t("status"), (c) => t(c.status)],
  ], items, "customers-table"));
}

async function customerPage(id) {
  const body = await get(`customers/${id}/overview`);
  const p = body.profile;
  const page = h("div", { "data-testid": "customer" }, partialMarker(body));
  if (p) {
    page.append(card(p.name, "profile", h("dl", { class: "facts" },
      h("dt", {}, t("number")), h("dd", {}, p.number),
      h("dt", {}, t("owner")), h("dd", {}, (body.owner && body.owner.name) || "—"),
      h("dt", {}, t("team")), h("dd", {}, (body.owner && body.owner.team) || "—"),
      h("dt", {}, t("region")), h("dd", {}, p.region),
      h("dt", {}, t("industry")), h("dd", {}, p.industry),
      h("dt", {}, t("status")), h("dd", {}, t(p.status)))));
  }
  if (body.credit) {
    page.append(card(t("credit"), "credit", h("dl", { class: "facts" },
      h("dt", {}, t("limit")), h("dd", { "data-testid": "credit-limit" }, money(body.credit.limit)),
      h("dt", {}, t("exposure")), h("dd", {}, money(body.credit.exposure)),
      h("dt", {}, t("receivable")), h("dd", {}, money(body.credit.receivable)),
      h("dt", {}, t("available")), h("dd", {}, money(body.credit.available)))));
  }
  if (body.open_orders) {
    page.append(card(`${t("open_orders")} (${body.open_orders.count}, ${money(body.open_orders.amount)})`, "open-orders", table([
      [t("order"), (o) => orderLink(o.id, o.number)], [t("status"), (o) => t(o.status)],
      [t("amount"), (o) => money(o.total), "num"], [t("created"), (o) => when(o.created_at)],
    ], body.open_orders.items, "orders-table")));
  }
  if (body.open_opportunities) {
    page.append(card(t("open_opportunities"), "customer-opportunities", table([
      [t("title_col"), (o) => o.title], [t("stage"), (o) => t(o.stage)],
      [t("amount"), (o) => money(o.expected_amount), "num"], [t("probability"), (o) => o.probability, "num"],
    ], body.open_opportunities.items)));
  }
  if (body.last_visits) {
    page.append(card(t("last_visits"), "last-visits", table([
      [t("number"), (v) => v.number], [t("planned_at"), (v) => when(v.planned_at)], [t("status"), (v) => t(v.state)],
      [t("purpose"), (v) => v.purpose],
    ], body.last_visits)));
  }
  if (body.open_service_requests) {
    page.append(card(t("service_requests"), "service-requests", table([
      [t("number"), (s) => s.number], [t("status"), (s) => t(s.status)], [t("due_by"), (s) => when(s.due_at)],
    ], body.open_service_requests.items)));
  }
  return page;
}

async function orderPage(id) {
  const body = await get(`orders/${id}/timeline`);
  const o = body.order;
  const page = h("div", { "data-testid": "order" }, partialMarker(body));
  if (o) {
    page.append(card(`${t("order")} ${o.number}`, "order-facts", h("dl", { class: "facts" },
      h("dt", {}, t("customer")), h("dd", {}, customerLink(o.customer_id, o.customer_name)),
      h("dt", {}, t("status")), h("dd", { "data-testid": "order-status", "data-status": o.status }, t(o.status)),
      h("dt", {}, t("total")), h("dd", {}, money(o.total)))));
  }
  page.append(card(t("timeline"), "timeline", body.events.length
    ? h("ol", { class: "timeline" }, body.events.map((e) => h("li", { dataset: { type: e.type } },
      h("strong", {}, e.type), " ", h("span", { class: "muted" }, when(e.at)), " ",
      e.number || "", e.detail ? ` — ${e.detail}` : "")))
    : h("p", { class: "empty" }, t("none"))));
  return page;
}

// -- the frame and the router -------------------------------------------------------------------------
const ROUTES = [
  [/^#\/work$/, workPage],
  [/^#\/dashboards(?:\/(\d{4}))?$/, dashboardsPage],
  [/^#\/customers$/, customersPage],
  [/^#\/customers\/([0-9a-f-]{36})$/, customerPage],
  [/^#\/orders\/([0-9a-f-]{36})$/, orderPage],
];

function frame() {
  const session = current();
  const top = document.getElementById("top");
  top.hidden = !session;
  document.title = `${t("title")} · Sales console`;
  document.getElementById("lang").textContent = t("lang");
  document.getElementById("signout").textContent = t("signout");
  if (!session) return;
  document.getElementById("who").textContent = `${session.me.display_name} (${session.me.role})`;
  const links = [["#/work", t("work")], ["#/dashboards", t("dashboards")]];
  if (may("GET customers")) links.push(["#/customers", t("customers")]);
  document.getElementById("nav").replaceChildren(...links.map(([href, label]) =>
    h("a", { href, class: location.hash.startsWith(href) ? "active" : "" }, label)));
}

async function route() {
  if (!current()) {
    if (location.hash !== "#/login") location.hash = "#/login";
    frame();
    main.replaceChildren(loginPage());
    main.dataset.page = "login";
    return;
  }
  await loadRoles();
  if (!location.hash || location.hash === "#/login") {
    location.hash = "#/work";
    return;
  }
  frame();
  const found = ROUTES.map(([pattern, page]) => [location.hash.match(pattern), page]).find(([m]) => m);
  main.dataset.page = "loading";
  main.replaceChildren(h("p", { class: "muted" }, t("loading")));
  const hash = location.hash;
  let content;
  try {
    content = found ? await found[1](...found[0].slice(1)) : failure(new ApiError(404, null));
  } catch (e) {
    content = failure(e);
  }
  if (hash !== location.hash) return; // the person moved on meanwhile
  main.replaceChildren(content);
  main.dataset.page = hash.split("/")[1] || "";
}

document.getElementById("lang").addEventListener("click", () => {
  toggleLanguage();
  route();
});
document.getElementById("signout").addEventListener("click", () => {
  signOut();
  location.hash = "#/login";
});
window.addEventListener("hashchange", route);
route();
