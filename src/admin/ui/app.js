// mailroster's web UI: the admin API (/api/v1/, see /api/v1/openapi.json) in the browser.
// No framework and no build step: the server ships these three files.
"use strict";
const state = { me: null, csrf: "", company: "", turn: 0, userQuery: { search: "", role: "", source: "", quiet: "", offset: 0 }, pages: {} };
const PAGE = 100;  // users per page; companies have many thousands
const $ = (sel, root = document) => root.querySelector(sel);
const main = () => $("#main");
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;",
  ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

async function api(method, path, body, contentType = "application/json") {
  const headers = { "Content-Type": contentType };
  if (method !== "GET") headers["X-CSRF-Token"] = state.csrf;
  const res = await fetch("/api/v1" + path, { method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : (contentType === "application/json" ? JSON.stringify(body) : body) });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = new Error(data.error ? data.error.message : res.statusText);
    e.status = res.status;
    e.field = data.error ? data.error.field : undefined;
    throw e;
  }
  return data;
}

function say(text, ok = true) {
  const m = $("#message");
  m.className = ok ? "ok" : "error";
  m.textContent = text;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => { m.textContent = ""; }, 6000);
}

const co = () => "/companies/" + encodeURIComponent(state.company);

// A paged list of the API (?limit=&offset=, answered with total and next_offset), shown a page
// at a time: `name` keeps the view's place (state.pages) while the administrator works on it.
async function pageOf(name, path, query = "") {
  const get = (offset) => api("GET", `${path}?limit=${PAGE}&offset=${offset}${query ? "&" + query : ""}`);
  let data = await get(state.pages[name] || 0);
  if (!data.items.length && data.offset > 0) {  // the list shrank under its last page
    data = await get(Math.floor(Math.max(data.total - 1, 0) / PAGE) * PAGE);
  }
  state.pages[name] = data.offset;
  return data;
}
// "All on this page": ticks or clears every row's checkbox of the page's table at once.
const selectAllHtml = () => `<label><input type="checkbox" data-select-all> all on this page</label>`;
function wireSelectAll(rowBoxes) {
  const all = main().querySelector("[data-select-all]");
  if (!all) return;
  all.onchange = () => main().querySelectorAll(rowBoxes).forEach((b) => { b.checked = all.checked; });
}

// A list's search box: what is typed is kept in state[key], and the list shown from its first
// page again.
function wireSearch(form, key, list, view) {
  $(form).onsubmit = (ev) => {
    ev.preventDefault();
    state[key] = new FormData(ev.target).get("search").trim();
    state.pages[list] = 0;
    draw(view);
  };
}

// A count as the pages show it: 1,204,500.
const num = (n) => Number(n).toLocaleString("en-US");
function pagerHtml(name, data) {
  const shown = data.items.length
    ? `${num(data.offset + 1)}–${num(data.offset + data.items.length)} of ${num(data.total)}` : "none";
  return `<div class="row" data-pager="${name}">
    <button class="secondary" data-page="previous"${data.offset ? "" : " disabled"}>Previous</button>
    <span class="page-info">${shown}</span>
    <button class="secondary" data-page="next"${data.next_offset === undefined ? " disabled" : ""}>Next</button></div>`;
}
function wirePager(name, data, view) {
  const at = (which) => main().querySelector(`[data-pager="${name}"] [data-page="${which}"]`);
  at("previous").onclick = () => { state.pages[name] = Math.max(0, data.offset - PAGE); draw(view); };
  at("next").onclick = () => { state.pages[name] = data.next_offset; draw(view); };
}

// Asks again before something that cannot be undone: box shows the question (HTML) with
// yesLabel and Cancel buttons (data-confirm-yes, data-confirm-no) in place of what it held.
function confirmIn(box, question, yesLabel, onYes, onNo) {
  box.innerHTML = `<span class="error">${question}</span>
    <button data-confirm-yes>${esc(yesLabel)}</button><button class="secondary" data-confirm-no>Cancel</button>`;
  $("[data-confirm-no]", box).onclick = onNo;
  $("[data-confirm-yes]", box).onclick = onYes;
}

// A plan the deletion guard refuses asks a second time, in box, before go(true) forces it
// ("Sync", "Import"); any other plan goes at once.
function pastTheGuard(box, plan, verb, go) {
  if (!plan?.guard) return go(false);
  confirmIn(box, `This deletes ${num(plan.counts.delete)} users, more than the deletion guard allows
    (${esc(plan.guard)}). ${verb} and delete them anyway?`, `Yes, ${verb.toLowerCase()} and delete`,
  () => go(true), () => { box.innerHTML = ""; });
}

function table(headers, rows) {
  return `<table><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${
    rows.map((r) => `<tr>${r.map((c, i) => `<td data-label="${esc(headers[i])}">${c}</td>`).join("")}</tr>`).join("")
  }</tbody></table>`;
}

async function login(paint) {
  paint(`<section><h1>Log in</h1><form id="login">
    <div class="row"><label>Email <input name="email" type="email" autocomplete="username" required></label></div>
    <div class="row"><label>Password <input name="password" type="password" autocomplete="current-password" required></label></div>
    <button>Log in</button> <span class="error" id="login-error"></span></form>
    <p><a href="#" id="forgot">Forgot your password?</a></p>
    <form id="forgot-form" hidden><p>We mail a link that sets a new password to your login's address.</p>
      <div class="row"><label>Email <input name="email" type="email" autocomplete="username" required></label>
      <button>Mail me a link</button></div><span id="forgot-answer"></span></form></section>`);
  $("#login").onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    try {
      const me = await api("POST", "/login", { email: f.get("email"), password: f.get("password") });
      state.csrf = me.csrf_token;
      await start();
    } catch (e) {
      $("#login-error").textContent = e.message;
    }
  };
  $("#forgot").onclick = (ev) => {
    ev.preventDefault();
    $("#forgot-form").hidden = false;
    $("#forgot-form input").value = $("#login input[name=email]").value;
  };
  $("#forgot-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const answer = $("#forgot-answer");
    try {
      answer.className = "ok";
      answer.textContent = (await api("POST", "/password/forgot", Object.fromEntries(new FormData(ev.target)))).message;
    } catch (e) {
      answer.className = "error";
      answer.textContent = e.message;
    }
  };
}

// #/reset/TOKEN, the mailed link: a new password, then the login form.
function resetView(paint, token) {
  paint(`<section><h1>Choose a password</h1><form id="reset">
    <div class="row"><label>New password <input name="password" type="password" autocomplete="new-password"
      placeholder="10+ characters" required></label></div>
    <div class="row"><label>Again <input name="again" type="password" autocomplete="new-password" required></label></div>
    <button>Set password</button> <span class="error" id="reset-error"></span></form></section>`);
  $("#reset").onsubmit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    if (f.get("password") !== f.get("again")) { $("#reset-error").textContent = "the two passwords differ"; return; }
    try {
      await api("POST", "/password/reset", { token, password: f.get("password") });
      history.replaceState(null, "", "#/");  // the link is used up: not kept in the address bar
      state.me = null;
      await start();
      say("password set: log in with it");
    } catch (e) { $("#reset-error").textContent = e.message; }
  };
}

// The roles of a login, as the pages name them.
const LOGIN_ROLES = [["company_admin", "company administrator"], ["end_user", "end user"], ["operator", "operator"]];
const loginRoleName = (r) => LOGIN_ROLES.find(([v]) => v === r)?.[1] ?? r;

// The roles of a user account (SPEC "Model"), as the pages name them.
const ROLES = [["end_user", "end user", "digest and login"], ["silent_user", "silent user", "digest, no login"],
  ["functional", "functional account", "shared mailbox, no login"]];
const roleName = (r) => ROLES.find(([v]) => v === r)?.[1] ?? r;
const roleOptions = (selected) => ROLES.map(([v, name, what]) =>
  `<option value="${v}" title="${what}"${v === selected ? " selected" : ""}>${name}</option>`).join("");

// Where users come from (SPEC "Model"), as the pages name them.
const SOURCES = [["manual", "added by hand"], ["csv", "CSV import"], ["ldap", "Active Directory"],
  ["azure", "Azure AD"], ["discovery", "SMTP Discovery"]];
const sourceName = (s) => SOURCES.find(([v]) => v === s)?.[1] ?? s;

// Users with no clean mail for so many days: licensed, but perhaps gone.
const QUIET_DAYS = [30, 90, 180, 365];

// The company's users a page at a time, found by address (or an alias) or name, by role, by source and by
// how long they have had no mail.
async function usersView(paint) {
  const q = state.userQuery;
  const data = await api("GET", co() + `/users?limit=${PAGE}&offset=${q.offset}` +
    `&search=${encodeURIComponent(q.search)}` + (q.role ? `&role=${q.role}` : "") +
    (q.source ? `&source=${q.source}` : "") + (q.quiet ? `&no_mail_days=${q.quiet}` : ""));
  const filtered = q.search || q.role || q.source || q.quiet;
  const shown = data.items.length ? `${num(q.offset + 1)}–${num(q.offset + data.items.length)}` +
      (filtered ? ` of ${num(data.matching)} matching (${num(data.company_users)} users)`
        : ` of ${num(data.company_users)}`)
    : (filtered ? "no user matches" : "no users");
  paint(`<section><h1>Users</h1>
    <form id="add-user" class="row"><input name="address" placeholder="address" required>
    <input name="first_name" placeholder="first name"><input name="surname" placeholder="surname">
    <select name="role" aria-label="new user's role">${roleOptions("end_user")}</select>
    <button>Add user</button></form>
    <form id="find-users" class="row" role="search"><input name="search" type="search"
      placeholder="address, alias or name" aria-label="search users" value="${esc(q.search)}">
      <select name="role" aria-label="role filter"><option value="">every role</option>
        ${ROLES.map(([v, name]) => `<option value="${v}"${v === q.role ? " selected" : ""}>${name}s</option>`).join("")}</select>
      <select name="source" aria-label="source filter"><option value="">any source</option>
        ${SOURCES.map(([v, name]) => `<option value="${v}"${v === q.source ? " selected" : ""}>${name}</option>`).join("")}</select>
      <select name="quiet" aria-label="last mail filter" title="clean mail in or out; a user who has had none counts from its creation">
        <option value="">any last mail</option>
        ${QUIET_DAYS.map((d) => `<option value="${d}"${String(d) === q.quiet ? " selected" : ""}>no mail for ${d} days</option>`).join("")}</select>
      <button class="secondary">Search</button>
      <a id="export-users" class="button secondary" href="/api/v1${co()}/users.csv"
        download title="every user and alias, as a file Import reads back">Export CSV</a></form>
    ${table(["", "Address", "Name", "Role", "Source", "Last mail"], data.items.map((u) => [
      `<input type="checkbox" data-user-address="${esc(u.address)}" aria-label="select ${esc(u.address)}">`,
      `<a href="#/user/${u.id}">${esc(u.address)}</a>`,
      esc(`${u.first_name} ${u.surname}`), esc(roleName(u.role)), esc(sourceName(u.source)),
      u.last_mail_at ? esc(u.last_mail_at.slice(0, 10)) : "none yet"]))}
    ${data.items.length ? `<div class="row">${selectAllHtml()}<select id="user-action" aria-label="with the selected users">
      <option value="">With the selected users…</option>
      ${ROLES.map(([v, name]) => `<option value="role:${v}">make them ${name}s</option>`).join("")}
      <option value="remove">remove them, with their aliases</option></select>
      <button id="apply-users">Apply</button><span id="users-confirm" class="row"></span></div>` : ""}
    <div class="row"><button id="previous-page" class="secondary"${q.offset ? "" : " disabled"}>Previous</button>
      <span id="page-info">${shown}</span>
      <button id="next-page" class="secondary"${data.next_offset === undefined ? " disabled" : ""}>Next</button></div></section>`);
  $("#add-user").onsubmit = async (ev) => {
    ev.preventDefault();
    const f = Object.fromEntries(new FormData(ev.target));
    try { await api("POST", co() + "/users", f); say("user added"); draw(usersView); } catch (e) { say(e.message, false); }
  };
  $("#find-users").onsubmit = (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    state.userQuery = { search: f.get("search").trim(), role: f.get("role"), source: f.get("source"),
      quiet: f.get("quiet"), offset: 0 };
    draw(usersView);
  };
  wireSelectAll("input[data-user-address]");
  // Several users at once (all or nothing): a role for all of them, or their removal, asked twice.
  if ($("#apply-users")) $("#apply-users").onclick = () => {
    const chosen = [...main().querySelectorAll("input[data-user-address]:checked")].map((c) => c.dataset.userAddress);
    const choice = $("#user-action").value;
    if (!chosen.length) return say("select at least one user", false);
    if (!choice) return say("choose what to do with them", false);
    const actions = chosen.map((address) => choice === "remove" ? { action: "remove", address }
      : { action: "set_role", address, role: choice.slice("role:".length) });
    const box = $("#users-confirm");
    const cancel = () => { box.innerHTML = ""; };
    const go = async (force = false) => {
      try {
        await api("POST", co() + "/users/actions", { actions, force });
        say(`${num(actions.length)} user(s) ${choice === "remove" ? "removed" : "changed"}`);
        draw(usersView);
      } catch (e) {
        // The deletion guard: a third question, naming how many of how many go.
        if (e.status === 409 && e.field === "force") {
          return confirmIn(box, `Removing ${num(actions.length)} users is more than the deletion guard allows
            (over 500 users, or over 10 % of the company's). Remove them anyway?`, "Yes, remove them all", () => go(true), cancel);
        }
        say(e.message, false);
      }
    };
    if (choice !== "remove") return go();
    confirmIn(box, `Remove ${num(chosen.length)} user(s) and their aliases? This cannot be undone.`,
      "Yes, remove", () => go(), cancel);
  };
  $("#previous-page").onclick = () => { q.offset = Math.max(0, q.offset - PAGE); draw(usersView); };
  $("#next-page").onclick = () => { q.offset = data.next_offset; draw(usersView); };
}

// One user: names and role to change, aliases to add and remove, and the user to remove
// (asked twice: it takes the aliases with it).
async function userView(paint, id = location.hash.match(/^#\/user\/(\d+)/)?.[1]) {
  const u = await api("GET", "/users/" + id);
  const synced = u.source === "ldap" || u.source === "azure";
  paint(`<section><h1>${esc(u.address)}</h1>
    <p>Source: ${esc(sourceName(u.source))}${u.source_id ? ` (${esc(u.source_id)})` : ""}; since ${esc(utc(u.created_at))};
    last mail ${u.last_mail_at ? esc(utc(u.last_mail_at)) : "none yet"}.
    ${synced ? `The directory sync keeps its names and role: a change here lasts until the next sync.` : ""}</p>
    <p><a href="#/mail-log?address=${encodeURIComponent(u.address)}" id="user-mail">Mail to and from
      ${esc(u.address)}</a> in the mail log.</p>
    <form id="user-edit" class="row"><label>First name <input name="first_name" value="${esc(u.first_name)}"></label>
      <label>Surname <input name="surname" value="${esc(u.surname)}"></label>
      <label>Role <select name="role">${roleOptions(u.role)}</select></label>
      <button>Save</button></form></section>
    <section><h2>Aliases</h2><p>Mail to an alias is accepted as mail to the user.</p>
    ${table(["Alias", ""], u.aliases.map((a) => [esc(a.address),
      `<button class="secondary" data-unalias="${esc(a.address)}">Remove</button>`]))}
    <form id="add-alias" class="row"><input name="address" placeholder="alias address"
      aria-label="new alias" required><button>Add alias</button></form></section>
    <section><h2>Remove</h2><div class="row" id="remove-row">
      <button class="secondary" id="remove-user">Remove this user</button></div></section>`);
  $("#user-edit").onsubmit = async (ev) => {
    ev.preventDefault();
    try { await api("PATCH", "/users/" + id, Object.fromEntries(new FormData(ev.target))); say("saved"); }
    catch (e) { say(e.message, false); }
  };
  $("#add-alias").onsubmit = async (ev) => {
    ev.preventDefault();
    try { await api("POST", `/users/${id}/aliases`, Object.fromEntries(new FormData(ev.target))); say("alias added"); draw(userView); }
    catch (e) { say(e.message, false); }
  };
  main().querySelectorAll("[data-unalias]").forEach((b) => (b.onclick = async () => {
    try { await api("DELETE", `/users/${id}/aliases/` + encodeURIComponent(b.dataset.unalias)); say("alias removed"); draw(userView); }
    catch (e) { say(e.message, false); }
  }));
  $("#remove-user").onclick = () => {
    const n = u.aliases.length;
    confirmIn($("#remove-row"), `Remove ${esc(u.address)}${n ? ` and its ${n} alias(es)` : ""}?
      Mail to ${n ? "them" : "it"} is then treated as mail to an unknown address.`, "Yes, remove",
    async () => {
      try { await api("DELETE", "/users/" + id); say("user removed"); location.hash = "#/users"; }
      catch (e) { say(e.message, false); }
    }, () => draw(userView));
  };
}

async function discoveryView(paint) {
  // Found by a part of the address ("@old.example"), or all of them.
  const search = state.discoveredSearch || "";
  const disc = await pageOf("discovered", co() + "/discovered", search ? `search=${encodeURIComponent(search)}` : "");
  // Domains whose mail server says yes to any address: their mail is relayed, never counted.
  const catchAll = (await api("GET", "/verify/catch-all").catch(() => ({ items: [] })))
    .items.filter((d) => d.company === state.company);
  const status = await api("GET", co() + "/discovery-status");
  paint(`<section><h1>SMTP Discovery</h1>
    <p>Addresses that received clean mail but are not users yet. Select some, then an action.</p>
    ${discoveryOffNotice(status)}
    <form id="find-discovered" class="row" role="search"><input name="search" type="search"
      placeholder="address or part of one" aria-label="search discovered addresses" value="${esc(search)}">
      <button class="secondary">Search</button></form>
    ${catchAll.map((d) => `<p class="notice" data-catch-all="${esc(d.domain)}">The mail server of
      <b>${esc(d.domain)}</b> accepts any address (seen ${esc(d.checked_at)}), so its addresses
      cannot be told real: mail to them is relayed but never counted for discovery.</p>`).join("")}
    ${table(["", "Address", "First name / surname", "Clean inbound", "Outbound", "Discovered", "Expires"],
      disc.items.map((d) => [`<input type="checkbox" data-address="${esc(d.address)}" aria-label="select ${esc(d.address)}">`,
        esc(d.address) + (d.suggested_alias_target ? `<br><button type="button" class="secondary"
          data-suggested="${esc(d.address)}" data-target="${esc(d.suggested_alias_target)}"
          title="select it, to add as an alias of that user">alias of ${esc(d.suggested_alias_target)}?</button>` : ""),
        `<span class="names"><input data-first="${esc(d.address)}" placeholder="first name" aria-label="first name of ${esc(d.address)}">
         <input data-last="${esc(d.address)}" placeholder="surname" aria-label="surname of ${esc(d.address)}"></span>`,
        d.clean_inbound.length, d.outbound_messages, esc(d.discovered_at ? utc(d.discovered_at) : "counting"),
        esc(d.expires_at ? utc(d.expires_at) : "")]))}
    ${pagerHtml("discovered", disc)}
    <div class="row">${selectAllHtml()}
      <select id="action" aria-label="Select">
        <option value="">Select</option>
        <option value="create_user">Create User Account</option>
        <option value="create_functional">Create Functional Account</option>
        <option value="mark_invalid">Mark as Invalid Account</option>
      </select>
      <label>Or Add as Alias <input id="alias-of" list="user-list" placeholder="user address"></label>
      <datalist id="user-list"></datalist>
      <button id="apply">Apply</button>
    </div></section>`);
  wirePager("discovered", disc, discoveryView);
  wireSelectAll("input[data-address]");
  wireSearch("#find-discovered", "discoveredSearch", "discovered", discoveryView);
  // The suggested target of an alias: the row selected, the user named for Or Add as Alias.
  main().querySelectorAll("[data-suggested]").forEach((b) => (b.onclick = () => {
    $(`input[data-address="${CSS.escape(b.dataset.suggested)}"]`).checked = true;
    $("#alias-of").value = b.dataset.target;
  }));
  // Type-ahead: the company's users matching what is typed so far, asked as it is typed.
  const aliasOf = $("#alias-of");
  aliasOf.oninput = async () => {
    const typed = aliasOf.value.trim();
    const found = typed ? await api("GET", co() + `/users?limit=20&search=${encodeURIComponent(typed)}`)
      .catch(() => ({ items: [] })) : { items: [] };
    if (aliasOf.value.trim() !== typed) return;  // typed on meanwhile: a newer answer follows
    $("#user-list").innerHTML = found.items.map((u) => `<option value="${esc(u.address)}">`).join("");
  };
  $("#apply").onclick = async () => {
    const chosen = [...main().querySelectorAll("input[data-address]:checked")].map((c) => c.dataset.address);
    const kind = $("#action").value, aliasOf = $("#alias-of").value.trim();
    if (!chosen.length) return say("select at least one address", false);
    if (!kind && !aliasOf) return say("choose an action or a user to add the alias to", false);
    const actions = chosen.map((address) => aliasOf && !kind
      ? { action: "add_alias", address, alias_of: aliasOf }
      : Object.assign({ action: kind, address }, kind === "create_user"
        ? { first_name: $(`[data-first="${CSS.escape(address)}"]`).value,
            surname: $(`[data-last="${CSS.escape(address)}"]`).value } : {}));
    try {
      await api("POST", co() + "/discovered/actions", { actions });
      say(`${actions.length} address(es) handled`);
      draw(discoveryView);
    } catch (e) { say(e.message, false); }
  };
}

async function invalidView(paint) {
  // Found by a part of the address or of the reason ("not handled": expiry's), or all of them.
  const search = state.invalidSearch || "";
  // A user made here gets the role discovery gives new users, unless another is chosen: the
  // settings asked for with the list, not after it.
  const [data, settings] = await Promise.all([
    pageOf("invalid", co() + "/invalid", search ? `search=${encodeURIComponent(search)}` : ""),
    api("GET", co() + "/discovery-settings").catch(() => ({}))]);
  paint(`<section><h1>Marked Invalid</h1><p>Mail to these addresses is rejected.
    Creating a user for one fixes it.</p>
    <form id="add-invalid" class="row"><input name="address" placeholder="address" required>
    <input name="reason" placeholder="reason"><button>Mark invalid</button></form>
    <form id="find-invalid" class="row" role="search"><input name="search" type="search"
      placeholder="address or reason" aria-label="search invalid addresses" value="${esc(search)}">
      <button class="secondary">Search</button></form>
    ${table(["Address", "Reason", "Since", ""], data.items.map((i) => [esc(i.address), esc(i.reason),
      esc(utc(i.created_at)), `<button data-user="${esc(i.address)}">Create user</button>
      <button class="secondary" data-forget="${esc(i.address)}">Remove</button>`]))}
    ${pagerHtml("invalid", data)}</section>`);
  wirePager("invalid", data, invalidView);
  wireSearch("#find-invalid", "invalidSearch", "invalid", invalidView);
  $("#add-invalid").onsubmit = async (ev) => {
    ev.preventDefault();
    try { await api("POST", co() + "/invalid", Object.fromEntries(new FormData(ev.target))); draw(invalidView); }
    catch (e) { say(e.message, false); }
  };
  // Create user: the account's names and role, on a line under the address, then Create.
  main().querySelectorAll("[data-user]").forEach((b) => (b.onclick = () => {
    const address = b.dataset.user;
    const row = b.closest("tr");
    if (row.nextElementSibling?.dataset.createFor === address) return;  // open already
    row.insertAdjacentHTML("afterend", `<tr data-create-for="${esc(address)}"><td colspan="4">
      <form class="row names"><span>New user <b>${esc(address)}</b>:</span>
      <input name="first_name" placeholder="first name" aria-label="first name of ${esc(address)}">
      <input name="surname" placeholder="surname" aria-label="surname of ${esc(address)}">
      <select name="role" aria-label="role of ${esc(address)}">${roleOptions(settings.default_role || "silent_user")}</select>
      <button>Create</button><button type="button" class="secondary" data-cancel>Cancel</button></form></td></tr>`);
    const line = row.nextElementSibling;
    const form = line.querySelector("form");
    form.querySelector("[data-cancel]").onclick = () => line.remove();
    form.querySelector("input").focus();
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      try {
        await api("POST", co() + "/invalid/" + encodeURIComponent(address) + "/user",
          Object.fromEntries(new FormData(form)));
        say(`user ${address} created`);
        draw(invalidView);
      } catch (e) { say(e.message, false); }
    };
  }));
  main().querySelectorAll("[data-forget]").forEach((b) => (b.onclick = async () => {
    try { await api("DELETE", co() + "/invalid/" + encodeURIComponent(b.dataset.forget)); draw(invalidView); }
    catch (e) { say(e.message, false); }
  }));
}

// Why discovery finds nothing new now, when the reason is not plain from its own settings.
function discoveryOffNotice(status) {
  return status.enabled && !status.active
    ? `<p class="notice" data-discovery-off>${esc(status.reason)}.</p>` : "";
}

// The SMTP Discovery settings as the seed names and explains them, in its order.
const DISCOVERY_SETTINGS = [
  ["enabled", "Enable SMTP Discovery", "Mail to an address that is no user is checked with the " +
    "company's mail server and delivered; an address that gets enough clean mail is discovered."],
  ["default_role", "Default new user role", ""],
  ["inbound_threshold", "Inbound detection threshold", "clean messages to an address within the period below make it discovered"],
  ["window_days", "Detection period (days)", ""],
  ["notification_weeks", "Weeks of notification before expiry", "a discovered address no one handled expires after this many weekly reports"],
  ["expired_to_new_user", "Expired addresses default to new user", "off: they are marked invalid. " +
    "Recommended off: new users are billed."],
  ["auto_add_aliases", "Auto-add detected alias addresses", "first.last@domain2 becomes an alias " +
    "of the user first.last@domain1. Recommended on."],
  ["auto_add_outbound", "Auto-add new users detected via outbound", "one clean message from the " +
    "company's mail server by a sender who is no user makes that sender a user. Recommended off: new users are billed."],
  ["report_new_users", "Report on new users", "Thursdays: the users created in the previous week"],
  ["report_new_aliases", "Report on new aliases", "Thursdays: the aliases created in the previous week"],
  ["report_include_admin", "Include admin contact in the report", "the report goes to the tech contact, and then to the admin contact too"],
];

async function settingsView(paint) {
  const [s, status] = await Promise.all([api("GET", co() + "/discovery-settings"),
    api("GET", co() + "/discovery-status")]);
  const help = (text) => text ? `<small class="muted">${esc(text)}</small>` : "";
  const field = ([k, label, text]) => {
    const v = s[k];
    if (typeof v === "boolean") {
      return `<div class="setting"><label><input type="checkbox" name="${k}" ${v ? "checked" : ""}> ${esc(label)}</label>${help(text)}</div>`;
    }
    const input = k === "default_role"
      ? `<select name="${k}">${[["silent_user", "silent user (digest, no login)"], ["end_user", "end user (digest and login)"]]
        .map(([r, t]) => `<option value="${r}" ${v === r ? "selected" : ""}>${t}</option>`).join("")}</select>`
      : `<input name="${k}" value="${esc(v)}"${typeof v === "number" ? ' type="number" min="1"' : ""}>`;
    return `<div class="setting"><label class="field">${esc(label)} ${input}</label>${help(text)}</div>`;
  };
  // Settings this page does not know yet (a newer server) are shown by their names.
  const known = new Set(DISCOVERY_SETTINGS.map(([k]) => k));
  const rest = Object.keys(s).filter((k) => !known.has(k)).map((k) => [k, k.replaceAll("_", " "), ""]);
  paint(`<section><h1>SMTP Discovery settings</h1>${discoveryOffNotice(status)}<form id="settings">
    ${[...DISCOVERY_SETTINGS.filter(([k]) => k in s), ...rest].map(field).join("")}
    <p class="muted">Reports are sent on Thursdays.</p>
    <button>Save</button></form></section>
    <section><h2>Thursday's report</h2><p>What the company's contacts will receive next.</p>
    <button id="preview-report" class="secondary">Preview the next report</button>
    <p id="report-to"></p><pre id="report-preview"></pre></section>`);
  $("#preview-report").onclick = async () => {
    try {
      const r = await api("GET", co() + "/report");
      $("#report-to").textContent = `Week of ${r.week}, to ${r.to.length ? r.to.join(", ") : "nobody (no tech contact)"}`;
      $("#report-preview").textContent = r.text;
    } catch (e) { say(e.message, false); }
  };
  $("#settings").onsubmit = async (ev) => {
    ev.preventDefault();
    const body = {};
    for (const [k, v] of Object.entries(s)) {
      const input = ev.target.elements[k];
      body[k] = typeof v === "boolean" ? input.checked : (typeof v === "number" ? Number(input.value) : input.value);
    }
    try { await api("PATCH", co() + "/discovery-settings", body); say("settings saved"); } catch (e) { say(e.message, false); }
  };
}

function planCounts(plan) {
  return `<p class="plan-counts">${num(plan.counts.create)} to create, ${num(plan.counts.update)} to update,
    ${num(plan.counts.delete)} to delete, ${num(plan.counts.skip)} skipped${plan.guard ? ` — <span class="error">deletion guard: ${esc(plan.guard)}</span>` : ""}</p>`;
}

// What a CSV import's preview says about the file as a whole; a sync's, what it read.
function planNotes(plan) {
  const notes = [];
  if (plan.info) notes.push(plan.info.incremental ? "read the changes since the last run" : "read the whole directory");
  if (plan.separator === ";") notes.push("columns separated by semicolons");
  if (plan.separator === "\t") notes.push("columns separated by tabs");
  for (const c of plan.unknown_columns || []) notes.push(`unknown column '${esc(c)}' ignored`);
  return notes.length ? `<p class="plan-notes">${notes.join("; ")}</p>` : "";
}

const errorItems = (errors) => errors.map((e) => `<li>line ${e.line}: ${esc(e.error)}</li>`).join("");

// A previewed plan (a CSV import's or Search Now's), shown in box. The server keeps the plan:
// it is shown a list and a page at a time, and an import's bad rows a page at a time too.
function planView(box, plan) {
  const lists = [["creates", "create"], ["updates", "update"], ["deletes", "delete"], ["skips", "skip"]];
  const base = co() + "/plans/" + plan.plan_id;
  const at = { list: (lists.find(([, c]) => plan.counts[c]) || lists[0])[0], offset: 0 };
  let errorsShown = plan.errors.length;
  box.innerHTML = `${plan.bad_rows ? `<h2 class="error">Bad rows: ${plan.bad_rows}</h2>
      <ul class="plan-errors">${errorItems(plan.errors)}</ul>
      <button type="button" class="secondary" data-more-errors${errorsShown < plan.bad_rows ? "" : " hidden"}>More bad rows</button>` : ""}
    ${planCounts(plan)}${planNotes(plan)}
    <div class="row">${lists.map(([l, c]) => `<button type="button" class="secondary" data-list="${l}">${c}: ${plan.counts[c]}</button>`).join("")}</div>
    <div data-rows></div>
    <div class="row"><button type="button" class="secondary" data-previous>Previous</button><span data-page></span>
      <button type="button" class="secondary" data-next>Next</button></div>`;
  const q = (selector) => box.querySelector(selector);
  const show = async () => {
    try {
      const page = await api("GET", `${base}/${at.list}?limit=${PAGE}&offset=${at.offset}`);
      q("[data-rows]").innerHTML = table(["Action", "Address", "Reason"],
        page.items.map((i) => [esc(i.action), esc(i.address), esc(i.reason)]));
      q("[data-page]").textContent = page.total
        ? `${at.list} ${num(at.offset + 1)}–${num(at.offset + page.items.length)} of ${num(page.total)}`
        : `no ${at.list}`;
      q("[data-previous]").disabled = at.offset === 0;
      q("[data-next]").disabled = page.next_offset === undefined;
      q("[data-next]").onclick = () => { at.offset = page.next_offset; show(); };
      box.querySelectorAll("[data-list]").forEach((b) => b.setAttribute("aria-pressed", b.dataset.list === at.list));
    } catch (e) { say(e.message, false); }
  };
  q("[data-previous]").onclick = () => { at.offset = Math.max(0, at.offset - PAGE); show(); };
  box.querySelectorAll("[data-list]").forEach((b) => (b.onclick = () => { at.list = b.dataset.list; at.offset = 0; show(); }));
  if (plan.bad_rows) {
    q("[data-more-errors]").onclick = async () => {
      try {
        const page = await api("GET", `${base}/errors?limit=${PAGE}&offset=${errorsShown}`);
        q(".plan-errors").insertAdjacentHTML("beforeend", errorItems(page.items));
        errorsShown += page.items.length;
        q("[data-more-errors]").hidden = page.next_offset === undefined;
      } catch (e) { say(e.message, false); }
    };
  }
  return show();
}

const SYNC_FIELDS = {
  ldap: ["host", "port", "security", "ca_file", "bind_dn", "base_dn", "filter"],
  azure: ["tenant_id", "client_id", "login_url", "graph_url"],
};
// The seed's "what to sync" and "how to sync", with the sync's option names.
const SYNC_INCLUDE = [["include_active", "Active users"], ["include_disabled", "Disabled user accounts"],
  ["include_functional", "Functional accounts"], ["include_security_groups", "Security groups"],
  ["include_hidden", "Items hidden from the address list"]];
const SYNC_ACTIONS = [["create", "Create new user accounts and groups"],
  ["update", "Update existing user accounts and groups"],
  ["delete_removed", "Delete accounts no longer in the directory"]];

// Each setting's label and, where a sample says what goes there, its placeholder.
const SYNC_LABELS = {
  host: ["Domain controllers"], port: ["Port", "389 or 636"], security: ["Security"],
  ca_file: ["CA file", "/etc/ssl/certs/corp-ca.pem"],
  bind_dn: ["Bind DN", "CN=mailroster,OU=Service,DC=example,DC=com"],
  base_dn: ["Base DN", "DC=example,DC=com"], filter: ["Filter", "optional, ANDed: (department=Sales)"],
  tenant_id: ["Tenant ID", "contoso.onmicrosoft.com or its GUID"], client_id: ["Client ID", "the app's GUID"],
  login_url: ["Login URL", "https://login.microsoftonline.com"], graph_url: ["Graph URL", "https://graph.microsoft.com"],
};

function syncFieldHtml(kind, f) {
  if (kind === "ldap" && f === "security") {
    return `<select name="security"><option value="none">none (port 389)</option>
      <option value="starttls">StartTLS (port 389)</option><option value="ldaps">LDAPS (port 636)</option></select>`;
  }
  if (kind === "ldap" && f === "host") {
    return `<input name="host" placeholder="dc1.example.com dc2.example.com"
      title="one or more domain controllers, tried in turn; host:port for one on another port">`;
  }
  const sample = SYNC_LABELS[f]?.[1];
  return `<input name="${f}"${f === "port" ? ' type="number" min="1" max="65535"' : ""}` +
    `${sample ? ` placeholder="${esc(sample)}"` : ""}>`;
}

function syncOptionsHtml() {
  const box = ([k, label]) => `<label><input type="checkbox" name="${k}"> ${esc(label)}</label>`;
  return `<label class="field">New users' role <select name="default_role">
      <option value="silent_user">silent user (digest, no login)</option>
      <option value="end_user">end user (digest and login)</option></select></label>
    <fieldset><legend>Sync</legend>${SYNC_INCLUDE.map(box).join("")}</fieldset>
    <fieldset><legend>Actions</legend>${SYNC_ACTIONS.map(box).join("")}
      <div class="row"><label>refuse a run deleting more than
        <input name="max_delete_count" type="number" min="0" size="6"> users or
        <input name="max_delete_share" type="number" min="0" max="100" step="any" size="4"> %</label></div></fieldset>`;
}

// A time of the API ("2026-12-06T20:29:25Z") as the pages show it; "never" for none.
const utc = (t) => t ? t.replace("T", " ").replace("Z", " UTC") : "never";

// What the last runs did and what the next one will read, from the sync's status.
function syncStatusText(st) {
  const when = utc;
  const r = st.last_result;
  const lines = [`Last success: ${when(st.last_success)}` + (r ? ` (${r.create} created, ${r.update} updated, ` +
    `${r.delete} deleted, ${r.skip} skipped, ${r.rejected ?? 0} rejected)` : "")];
  if (st.last_error) lines.push(`Last error (${when(st.last_attempt)}): ${st.last_error}`);
  lines.push(`Next run reads ${st.next_read === "full" ? "the whole directory" : "changes only"}` +
    ` (last full read: ${when(st.last_full_read)}); ` +
    (st.options.frequency_hours ? `every ${st.options.frequency_hours} hours` : "by hand only"));
  return lines;
}

async function importView(paint) {
  // Each directory sync as it stands (one not configured yet: the defaults), read before the
  // page is drawn: forms filled in when their data came later would overwrite what was typed.
  const stateOf = (kind) => api("GET", co() + "/sync/" + kind).catch(async (e) => {
    if (e.status !== 404) throw e;
    return { settings: {}, options: (await api("GET", "/sync-defaults")).options };
  });
  const kinds = ["ldap", "azure"];
  const stood = Object.fromEntries(await Promise.all(kinds.map(async (k) =>
    [k, await stateOf(k).catch((e) => { say(e.message, false); return null; })])));
  paint(`<section><h1>Import Users: CSV</h1>
    <p>Columns: email (required), first_name, surname, role, type, aliases (separated by ;);
      separated by commas, or by semicolons or tabs as spreadsheets save them; UTF-8.
      Users → Export CSV writes the company's users in this format: edit that file and import it
      again, and only your edits change.</p>
    <div class="row"><input type="file" id="csv" accept=".csv,text/csv" aria-label="CSV file">
    <label><input type="checkbox" id="skip-invalid"> import the good rows even when some are bad</label>
    <label><input type="checkbox" id="delete-missing"> delete users imported from a CSV file who are not in this one</label>
    <button id="preview">Preview</button></div><div id="csv-result"></div></section>
    ${kinds.map((k) => `<section><h1>${k === "ldap" ? "Active Directory (LDAP)" : "Azure AD"}</h1>
      <form data-sync="${k}">${SYNC_FIELDS[k].map((f) => `<label class="field">${esc(SYNC_LABELS[f][0])}
        ${syncFieldHtml(k, f)}</label>`).join("")}
      ${k === "ldap" ? `<div class="row"><label><input type="checkbox" name="verify">
        check the server's certificate (StartTLS, LDAPS)</label></div>` : ""}
      <label class="field">${k === "ldap" ? "Bind password" : "Client secret"}
        <input name="secret" type="password" autocomplete="off" placeholder="unchanged"></label>
      ${syncOptionsHtml()}
      <label class="field">Schedule <select name="frequency_hours"><option value="">by hand only</option>
        ${[1, 3, 6, 12, 24].map((h) => `<option value="${h}">every ${h === 1 ? "hour" : h + " hours"}</option>`).join("")}</select></label>
      <div class="row"><button>Save</button><button type="button" class="secondary" data-test>Test</button>
        <button type="button" class="secondary" data-search>Search Now</button>
        <button type="button" data-run hidden>Sync</button></div><div class="row" data-confirm></div>
      <div data-status class="muted"></div><div data-result></div></form></section>`).join("")}`);
  $("#preview").onclick = async () => {
    const file = $("#csv").files[0];
    if (!file) return say("choose a CSV file", false);
    try {
      const plan = await api("POST", co() + "/imports" + ($("#delete-missing").checked ? "?delete_missing=true" : ""),
        await file.text(), "text/csv");
      await planView($("#csv-result"), plan);
      $("#csv-result").insertAdjacentHTML("beforeend",
        `<button id="apply-import">Import</button><div class="row" data-confirm></div>`);
      const apply = async (force) => {
        try {
          const r = await api("POST", co() + "/imports/" + plan.plan_id + "/apply",
            { skip_invalid: $("#skip-invalid").checked, force });
          say(`imported: ${r.created} created, ${r.updated} updated, ${r.deleted} deleted`);
          $("#csv-result").innerHTML = "";
        } catch (e) { say(e.message, false); }
      };
      $("#apply-import").onclick = () => pastTheGuard($("#csv-result [data-confirm]"), plan, "Import", apply);
    } catch (e) { say(e.message, false); }
  };
  for (const form of main().querySelectorAll("form[data-sync]")) {
    const kind = form.dataset.sync, path = co() + "/sync/" + kind;
    const boxes = [...SYNC_INCLUDE, ...SYNC_ACTIONS].map(([k]) => k);
    // The form as the sync stands (a sync not configured yet shows the defaults).
    const show = (st) => {
      for (const f of SYNC_FIELDS[kind]) form.elements[f].value = st.settings[f] ?? (f === "security" ? "none" : "");
      if (form.elements.verify) form.elements.verify.checked = st.settings.verify ?? true;
      const o = st.options;
      for (const k of boxes) form.elements[k].checked = !!o[k];
      form.elements.default_role.value = o.default_role;
      form.elements.max_delete_count.value = o.max_delete_count;
      form.elements.max_delete_share.value = Math.round(o.max_delete_share * 1000) / 10;
      form.elements.frequency_hours.value = o.frequency_hours ?? "";
      const status = $("[data-status]", form);
      status.innerHTML = st.last_attempt === undefined ? ""
        : syncStatusText(st).map((l) => `<p>${esc(l)}</p>`).join("");
    };
    const refresh = () => stateOf(kind).then(show).catch((e) => say(e.message, false));
    if (stood[kind]) show(stood[kind]);
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const settings = {};
      for (const f of SYNC_FIELDS[kind]) {
        const v = form.elements[f].value.trim();
        // An emptied CA file or filter is cleared; the other fields left empty keep their value.
        if (v !== "" || f === "ca_file" || f === "filter") settings[f] = f === "port" ? Number(v) : v;
      }
      if (form.elements.verify) settings.verify = form.elements.verify.checked;
      const freq = form.elements.frequency_hours.value;
      const options = { frequency_hours: freq ? Number(freq) : null,
        default_role: form.elements.default_role.value,
        max_delete_count: Number(form.elements.max_delete_count.value),
        max_delete_share: Number(form.elements.max_delete_share.value) / 100 };
      for (const k of boxes) options[k] = form.elements[k].checked;
      const body = { settings, options };
      if (form.elements.secret.value) body.secret = form.elements.secret.value;
      try {
        await api("PUT", path, body); form.elements.secret.value = ""; say("sync settings saved");
        await refresh();
      } catch (e) { say(e.message, false); }
    };
    $("[data-test]", form).onclick = async () => {
      try {
        const r = await api("POST", path + "/test", {});
        say(`connected: ${r.server}${r.address ? " at " + r.address : ""}${r.graph_url ? " at " + r.graph_url : ""}`);
      } catch (e) { say(e.message, false); }
    };
    // Search Now reads the whole directory, so the administrator reviews every entry's fate,
    // and Sync then applies a whole read too: what was shown is what is done.
    let previewed = null;
    $("[data-search]", form).onclick = async () => {
      try {
        previewed = await api("POST", path + "/search", { full: true });
        await planView($("[data-result]", form), previewed);
        $("[data-run]", form).hidden = false;
      } catch (e) { say(e.message, false); }
    };
    const sync = async (force) => {
      $("[data-confirm]", form).innerHTML = "";
      try {
        const r = await api("POST", path + "/run", force ? { full: true, force: true } : { full: true });
        say(`synced: ${r.created} created, ${r.updated} updated, ${r.deleted} deleted`);
        $("[data-result]", form).innerHTML = "";  // the plan is done: Search Now again for the next
        $("[data-run]", form).hidden = true;
      } catch (e) { say(e.message, false); }
      await refresh();
    };
    $("[data-run]", form).onclick = () => pastTheGuard($("[data-confirm]", form), previewed, "Sync", sync);
  }
}

async function auditView(paint) {
  // "What happened to this address?": the events about it only, when one is asked for; and
  // the events of one action ("who removed users?").
  const about = state.auditObject || "", action = state.auditAction || "";
  const query = new URLSearchParams();
  if (about) query.set("object", about);
  if (action) query.set("action", action);
  // The actions, for the filter: the server's list (asked once).
  const [data, actions] = await Promise.all([pageOf("audit", co() + "/audit", query.toString()),
    state.auditActions || api("GET", "/audit-actions").then((r) => (state.auditActions = r.items))]);
  paint(`<section><h1>Audit</h1>
    <form id="find-audit" class="row" role="search"><input name="object" type="search"
      placeholder="address" aria-label="events about" value="${esc(about)}">
      <select name="action" aria-label="action"><option value="">every action</option>${
        actions.map((a) => `<option${a === action ? " selected" : ""}>${a}</option>`).join("")}</select>
      <button class="secondary">Find</button></form>
    ${table(["When", "Who", "What", "Object", "Change"],
    data.items.map((e) => [esc(utc(e.at)), esc(e.actor), esc(e.action), esc(e.object),
      `<span class="change">${esc(e.change)}</span>`]))}
    ${pagerHtml("audit", data)}</section>`);
  wirePager("audit", data, auditView);
  $("#find-audit").onsubmit = (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    state.auditObject = f.get("object").trim();
    state.auditAction = f.get("action");
    state.pages.audit = 0;
    draw(auditView);
  };
}

// "What happened to the mail for bob?": each recipient the gateway refused and each message's
// outcome, newest first; found by a part of an address, and by result.
async function mailLogView(paint) {
  const find = state.mailLog || { address: "", result: "", every: false };
  const operator = state.me.role === "operator";
  const every = operator && find.every;  // operators: every company's at once
  const query = new URLSearchParams();
  if (find.address) query.set("address", find.address);
  if (find.result) query.set("result", find.result);
  const data = await pageOf("mail-log", every ? "/mail-log" : co() + "/mail-log", query.toString());
  const results = ["delivered", "deferred", "rejected", "spam"];
  const headers = ["When", ...(every ? ["Company"] : []), "Direction", "From", "To", "Result",
    "Reply", "Server"];
  paint(`<section><h1>Mail log</h1>
    <form id="find-mail" class="row" role="search"><input name="address" type="search"
      placeholder="address or part of one" aria-label="mail from or to" value="${esc(find.address)}">
      <select name="result" aria-label="result"><option value="">any result</option>${
        results.map((r) => `<option${r === find.result ? " selected" : ""}>${r}</option>`).join("")}</select>
      ${operator ? `<label><input type="checkbox" name="every"${every ? " checked" : ""}> every company</label>` : ""}
      <button class="secondary">Find</button></form>
    <form id="explain" class="row"><input name="address" placeholder="an address of the company"
      aria-label="address to check" required><button class="secondary">What would the gateway answer?</button></form>
    <p id="explained" role="status" hidden></p>
    <div class="mail-log">${table(headers,
    data.items.map((e) => [esc(e.at.replace("T", " ").replace("Z", "")), ...(every ? [e.company ? esc(e.company) : "<i data-no-company>no company</i>"] : []),
      esc(e.direction), esc(e.sender || "<>"), esc(e.recipient),
      `<span class="result-${esc(e.result)}">${esc(e.result)}</span>`,
      esc(`${e.code} ${e.reply}`), esc(e.server)]))}</div>
    ${pagerHtml("mail-log", data)}</section>`);
  wirePager("mail-log", data, mailLogView);
  // What the gateway answers for mail to an address now, and why (no mail sent, nobody asked).
  $("#explain").onsubmit = async (ev) => {
    ev.preventDefault();
    const address = new FormData(ev.target).get("address").trim();
    const out = $("#explained");
    try {
      const r = await api("GET", co() + "/recipients/" + encodeURIComponent(address));
      const reply = r.reply ? `${r.reply.code} ${r.reply.text}` : "the answer of the company's mail server (asked at once)";
      // A callout: what this node remembers of the mail server's answer, if anything.
      const cached = !("cached" in r) ? ""
        : r.cached === null ? "<br>Nothing remembered: the next mail to it asks the mail server."
        : `<br>Remembered: <code>${esc(r.cached.reply)}</code> (${esc(r.cached.verdict)}), asked again after ${
          esc(r.cached.refresh_at.replace("T", " ").replace("Z", ""))} UTC.`;
      out.innerHTML = `<b>${esc(r.address)}</b>: <code>${esc(reply)}</code><br>${esc(r.why)}${cached}`;
    } catch (e) {
      out.textContent = e.message;
    }
    out.hidden = false;
  };
  $("#find-mail").onsubmit = (ev) => {
    ev.preventDefault();
    const form = new FormData(ev.target);
    state.mailLog = { address: form.get("address").trim(), result: form.get("result"),
      every: form.get("every") === "on" };
    state.pages["mail-log"] = 0;
    draw(mailLogView);
  };
}

// The company: its contacts (who gets Thursday's report) and the networks its own mail server
// sends from (outbound mail is taken from these only; operators set them). Operators add
// companies here too.
// Licensed users over a month, as each maintenance run counted them (what the operator bills
// on): one company's days (path: the company's), or every company's peak (path: /usage).
// Shown in `box`; its month field picks another month.
async function showUsage(box, path, month = new Date().toISOString().slice(0, 7)) {
  const u = await api("GET", `${path}?month=${encodeURIComponent(month)}`);
  const every = path === "/usage";
  const one = u.companies[0];
  const body = every
    ? (u.companies.length ? table(["Company", "Peak", "Average", "Last day", "Users then", "Days counted"],
      u.companies.map((c) => [`<span data-usage-company="${esc(c.company)}">${esc(c.company)}</span>`,
        `<b data-usage-peak>${c.peak_users}</b>`, c.average_users, esc(c.last.day), c.last.users, c.days_counted]))
      : "<p data-usage-none>No day counted in this month.</p>")
    : (one ? `<p>Peak <b data-usage-peak>${one.peak_users}</b>, average ${one.average_users} over
        ${one.days_counted} day(s) counted.</p>${table(["Day", "Peak", "Users", "End users", "Silent users",
        "Functional", "From discovery"], one.days.map((d) => [`<span data-usage-day>${esc(d.day)}</span>`,
        d.peak_users, d.users, d.end_users, d.silent_users, d.functional, d.from_discovery]))}`
      : "<p data-usage-none>No day counted in this month.</p>");
  box.innerHTML = `<h2>Licensed users</h2><p>User accounts are the licensed set. The maintenance job
    counts them every run; a day shows its highest count and its last (days in UTC).</p>
    <div class="row"><label>Month <input type="month" id="usage-month" value="${esc(month)}"></label>
    <a id="usage-csv" class="button secondary" href="/api/v1${path}.csv?month=${encodeURIComponent(month)}"
      download>Download CSV</a></div>${body}`;
  box.querySelector("#usage-month").onchange = (ev) => {
    if (ev.target.value) showUsage(box, path, ev.target.value).catch((e) => say(e.message, false));
  };
}

async function companyView(paint) {
  const operator = state.me.role === "operator";
  const [c, logins, users, domains] = await Promise.all([api("GET", co()), api("GET", co() + "/logins"),
    operator ? api("GET", co() + "/users?limit=1") : null, operator ? api("GET", co() + "/domains") : null]);
  paint(`<section><h1>Company ${esc(c.name)}</h1>
    <form id="contacts"><p>Thursday's SMTP Discovery report goes to the technical contact, and to
      the administrative contact when the discovery settings say so.</p>
      <div class="row"><label>Technical contact <input name="tech_contact" value="${esc(c.tech_contact)}"></label></div>
      <div class="row"><label>Administrative contact <input name="admin_contact" value="${esc(c.admin_contact)}"></label></div>
      <button>Save contacts</button></form></section>
    <section><h2>Outbound relay networks</h2><p>Mail from the company's own server is taken on the
      outbound port only from these networks.</p>
    ${operator ? `<form id="networks"><textarea name="networks" rows="4" cols="32"
        aria-label="relay networks, one a line" placeholder="one a line: 192.0.2.10, 198.51.100.0/24, 2001:db8::/48">${esc(c.relay_networks.join("\n"))}</textarea>
        <div class="row"><button>Save networks</button></div></form>`
      : `<ul id="networks-list">${c.relay_networks.map((n) => `<li>${esc(n)}</li>`).join("") ||
        "<li>none: no outbound mail is taken</li>"}</ul><p>Your operator changes these.</p>`}</section>
    <section><h2>Logins</h2><p>Who logs in for ${esc(c.name)}: administrators, and end users
      (users whose role is end user) for their own account.</p>
    ${table(["Email", "Role", "Since", ""], logins.items.map((l) => [esc(l.email), esc(loginRoleName(l.role)), esc(utc(l.created_at)),
      l.email === state.me.email ? "" : `<button class="secondary" data-unlogin="${esc(l.email)}">Remove</button>`]))}
    <form id="add-login" class="row"><input name="email" placeholder="email" aria-label="login email" required>
      <select name="role" aria-label="login role">${LOGIN_ROLES.slice(0, 2).map(([v, name]) =>
        `<option value="${v}">${name}</option>`).join("")}</select>
      <input name="password" type="password" autocomplete="new-password" placeholder="first password, or none: invite by mail"
        aria-label="first password"><button>Add login</button></form></section>
    <section id="usage"></section>
    ${operator ? `<section><h2>Another company</h2><form id="add-company" class="row">
      <input name="name" placeholder="name" aria-label="new company" required><button>Add company</button></form></section>
    <section id="remove-company"><h2>Remove ${esc(c.name)}</h2><p>The company goes with its
      ${num(domains.items.length)} domain(s) and ${num(users.company_users)} user(s), their aliases, discovered and
      invalid addresses, syncs and logins; mail to its domains is refused from then on. This cannot
      be undone: type the company's name to remove it.</p>
      <form id="remove-company-form" class="row"><input name="name" autocomplete="off"
        aria-label="name of the company to remove" placeholder="${esc(c.name)}">
        <button class="danger" disabled>Remove company</button></form></section>` : ""}`);
  $("#contacts").onsubmit = async (ev) => {
    ev.preventDefault();
    try { await api("PATCH", co(), Object.fromEntries(new FormData(ev.target))); say("contacts saved"); }
    catch (e) { say(e.message, false); }
  };
  $("#add-login").onsubmit = async (ev) => {
    ev.preventDefault();
    const body = Object.fromEntries(new FormData(ev.target));
    if (!body.password) delete body.password;  // none: the login is invited by mail
    try {
      const added = await api("POST", co() + "/logins", body);
      say(added.invited ? `login added: ${added.email} was mailed a link to choose a password` : "login added");
      draw(companyView);
    } catch (e) { say(e.message, false); }
  };
  main().querySelectorAll("[data-unlogin]").forEach((b) => (b.onclick = async () => {
    try { await api("DELETE", co() + "/logins/" + encodeURIComponent(b.dataset.unlogin)); say("login removed"); draw(companyView); }
    catch (e) { say(e.message, false); }
  }));
  // Once the forms above are wired (a click on them must not wait for it).
  showUsage($("#usage"), co() + "/usage").catch((e) => say(e.message, false));
  if (!operator) return;
  $("#networks").onsubmit = async (ev) => {
    ev.preventDefault();
    const networks = new FormData(ev.target).get("networks").split(/[\s,]+/).filter(Boolean);
    try { await api("PATCH", co(), { relay_networks: networks }); say("relay networks saved"); draw(companyView); }
    catch (e) { say(e.message, false); }
  };
  // Removal: only once the company's name is typed, as it cannot be undone.
  const removal = $("#remove-company-form");
  const typed = removal.querySelector("input"), remove = removal.querySelector("button");
  typed.oninput = () => { remove.disabled = typed.value.trim() !== c.name; };
  removal.onsubmit = async (ev) => {
    ev.preventDefault();
    if (typed.value.trim() !== c.name) return;
    try {
      await api("DELETE", co() + "?force=true");
      atCompany("");
      say("company " + c.name + " removed");
      start();
    } catch (e) { say(e.message, false); }
  };
  $("#add-company").onsubmit = async (ev) => {
    ev.preventDefault();
    try {
      const added = await api("POST", "/companies", Object.fromEntries(new FormData(ev.target)));
      atCompany(added.name);
      say("company " + added.name + " added");
      start();
    } catch (e) { say(e.message, false); }
  };
}

// The company's domains and where their mail goes; Check tries a destination as the gateway
// does (the CLI's `domain check`); Ask again forgets the callout answers kept for the domain
// (`verify flush --domain`, on every node), after mailboxes were made or removed there.
// Operators add domains and change destinations.
async function domainsView(paint) {
  const data = await api("GET", co() + "/domains");
  const operator = state.me.role === "operator";
  paint(`<section><h1>Domains</h1>
    <p>Mail for these domains is accepted and relayed to their mail server. Check tries the
    server as the gateway would: it connects, greets, and asks for a random address. The gateway
    keeps the server's answer for each address (for days when it was yes): after making or removing
    mailboxes there, Ask again.</p>
    ${table(["Domain", "Delivered to", ""], data.items.map((d) => [esc(d.name),
      operator ? `<form class="row" data-destination="${esc(d.name)}"><input name="destination"
        value="${esc(d.destination)}" aria-label="destination of ${esc(d.name)}" size="24">
        <button class="secondary">Save</button></form>` : esc(d.destination),
      `<span class="row" data-domain-actions="${esc(d.name)}"><button data-check="${esc(d.name)}">Check</button><button class="secondary" data-flush="${esc(d.name)}"
        title="forget the answers kept for its addresses: the next mail asks the server again">Ask again</button>${operator
        ? `<button class="secondary" data-unroute="${esc(d.name)}">Remove</button>` : ""}</span>`]))}
    ${operator ? `<form id="add-domain" class="row"><input name="name" placeholder="domain" required>
      <input name="destination" placeholder="host:port, next:port" required><button>Add domain</button></form>` : ""}
    </section><section id="domain-check" hidden></section>`);
  main().querySelectorAll("[data-check]").forEach((b) => (b.onclick = async () => {
    const box = $("#domain-check");
    box.hidden = false;
    box.innerHTML = `<h2>${esc(b.dataset.check)}</h2><p>Checking…</p>`;
    b.disabled = true;
    try { box.innerHTML = checkHtml(await api("POST", co() + "/domains/" + encodeURIComponent(b.dataset.check) + "/check", {})); }
    catch (e) { box.innerHTML = `<p class="error">${esc(e.message)}</p>`; }
    b.disabled = false;
  }));
  main().querySelectorAll("[data-flush]").forEach((b) => (b.onclick = async () => {
    try {
      const r = await api("POST", "/verify/flush", { domain: b.dataset.flush });
      say(`${r.removed} answer(s) for ${b.dataset.flush} forgotten: its server is asked again`);
    } catch (e) { say(e.message, false); }
  }));
  // Removing a domain is asked twice: its mail is refused from then on.
  main().querySelectorAll("[data-unroute]").forEach((b) => (b.onclick = () => {
    const name = b.dataset.unroute;
    const row = main().querySelector(`[data-domain-actions="${CSS.escape(name)}"]`);
    confirmIn(row, `Remove ${esc(name)}? Its mail is refused from then on.`, "Yes, remove", async () => {
      try { await api("DELETE", co() + "/domains/" + encodeURIComponent(name)); say("domain " + name + " removed"); draw(domainsView); }
      catch (e) { say(e.message, false); draw(domainsView); }
    }, () => draw(domainsView));
  }));
  main().querySelectorAll("[data-destination]").forEach((f) => (f.onsubmit = async (ev) => {
    ev.preventDefault();
    try {
      await api("PATCH", co() + "/domains/" + encodeURIComponent(f.dataset.destination), Object.fromEntries(new FormData(f)));
      say("destination saved");
    } catch (e) { say(e.message, false); }
  }));
  if (operator) {
    $("#add-domain").onsubmit = async (ev) => {
      ev.preventDefault();
      try { await api("POST", co() + "/domains", Object.fromEntries(new FormData(ev.target))); draw(domainsView); }
      catch (e) { say(e.message, false); }
    };
  }
}

// What a domain check found, as the CLI's text says it: each server of the destination, in
// order, when it has several (the one mail goes to now is marked).
function checkHtml(c) {
  const several = c.servers.length > 1;
  const parts = c.servers.map((s) => serverCheckHtml(s, c.tls_policy,
    several ? `${esc(s.server)}${s.connected && s.server === c.server ? " (mail goes here now)" : ""}` : ""));
  return `<h2>${esc(c.domain)} → ${esc(c.destination)}</h2>${parts.join("")}`;
}

function serverCheckHtml(s, tlsPolicy, heading) {
  const rows = [["Session", `${s.connected ? "ready" : "failed"} in ${s.ms} ms: ${esc(s.session)}`]];
  if (s.connected) {
    rows.push(["Extensions", esc(s.extensions.join(" ")) || "(none: HELO only)"]);
    rows.push(["TLS", s.tls.active
      ? `${esc(s.tls.version)} ${esc(s.tls.cipher)}; certificate ${esc(s.tls.certificate)}, ${s.tls.trusted
        ? "trusted" : `not trusted (${esc(s.tls.untrusted_because)})`}, ${s.tls.names_host ? "names the host" : "does not name the host"}`
      : `not used (relay policy "${esc(tlsPolicy)}"${tlsPolicy === "none" ? "" : "; the server offers no STARTTLS"})`]);
    if (s.mail_from) rows.push(["MAIL FROM", esc(s.mail_from)]);
    if (s.random_recipient) rows.push(["Random RCPT", esc(s.random_recipient)]);
  }
  const verdict = !s.connected ? "the server cannot take mail"
    : s.verdict || "the server refused the probe sender: callouts to it cannot verify recipients";
  return `<div data-server="${esc(s.server)}">${heading ? `<h3>${heading}</h3>` : ""}${table(["Step", "Found"], rows)}
    <p class="${s.verifies_recipients ? "ok" : "error"}" data-verdict>${esc(verdict)}</p></div>`;
}

// One's own password: every session ends with the change, this one too, so it logs in again.
const passwordHtml = `<section><h2>Password</h2><form id="password" class="row">
  <input name="current_password" type="password" autocomplete="current-password" placeholder="current password"
    aria-label="current password" required>
  <input name="new_password" type="password" autocomplete="new-password" placeholder="new password (10+ characters)"
    aria-label="new password" required><button>Change password</button></form></section>`;
function wirePassword() {
  $("#password").onsubmit = async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/me/password", Object.fromEntries(new FormData(ev.target)));
      state.me = null;
      await start();
      say("password changed: log in with the new one");
    } catch (e) { say(e.message, false); }
  };
}

// Operators: the serve processes on this database (as `mailroster node list`), the mail servers
// failing now (this node's relay: tried after the others for [relay] server_retry), and the
// domains of every company whose mail server takes any address (as `mailroster verify catch-all`).
async function gatewayView(paint) {
  const [nodes, failing, catchAll, syncs] = await Promise.all([api("GET", "/nodes"), api("GET", "/relay/failing"),
    api("GET", "/verify/catch-all"), api("GET", "/syncs")]);
  const when = (t) => esc(utc(t));
  paint(`<section><h1>Gateway</h1>
    <p>The serve processes sharing this database. Each says it is alive every scheduler tick; one
    at a time runs directory syncs, expiry and the Thursday reports.</p>
    ${table(["Node", "Version", "Serving", "Started", "State"], nodes.items.map((n) => [
      `<span data-node="${esc(n.id)}">${esc(n.host)}</span><br><small>${esc(n.id)}</small>`,
      esc(n.version), esc(n.serving), when(n.started_at),
      `<span class="${n.alive ? "ok" : "error"}" data-node-state>${n.alive ? "alive" : `gone since ${when(n.seen_at)}`}</span>${
        n.scheduler ? `<br><b data-scheduler>runs the scheduler</b>` : ""}`]))}
    ${nodes.items.length ? "" : "<p>No serve process has said it is alive.</p>"}</section>
    <section><h2>Mail servers failing now</h2>
    <p>Servers of the companies' domains (and the outbound next hop) this node could not get a
    session from: mail goes to a domain's other servers meanwhile, or waits (451) when it has none.</p>
    ${failing.items.length ? table(["Server", "Failed", "Why", "Tried first again"], failing.items.map((f) => [
      `<span data-failing="${esc(f.server)}">${esc(f.server)}</span>`, when(f.failed_at), esc(f.why), when(f.retry_at)]))
      : "<p data-none-failing>None.</p>"}</section>
    <section><h2>Catch-all mail servers</h2>
    <p>These domains' servers accept any address, so callouts cannot tell real addresses: their mail
    is relayed, but never counted for discovery.</p>
    ${catchAll.items.length ? table(["Domain", "Company", "Server", "Found"], catchAll.items.map((d) => [
      `<span data-catch-all="${esc(d.domain)}">${esc(d.domain)}</span>`, esc(d.company), esc(d.destination), when(d.checked_at)]))
      : "<p data-no-catch-all>None found.</p>"}</section>
    <section><h2>Directory syncs</h2>
    <p>Every company's Active Directory and Azure AD syncs; failing ones first.</p>
    ${syncs.items.length ? table(["Company", "Directory", "Every", "Last success", "State"],
      [...syncs.items].sort((a, b) => b.failing - a.failing).map((y) => [
        `<span data-sync-company="${esc(y.company)}">${esc(y.company)}</span>`,
        y.kind === "azure" ? "Azure AD" : "Active Directory", y.frequency_hours ? `${y.frequency_hours} hours` : "by hand",
        when(y.last_success),
        y.failing ? `<span class="error" data-sync-failing>the last attempt (${when(y.last_attempt)}) failed: ${esc(y.last_error)}</span>`
          : `<span class="ok">ok</span>`]))
      : "<p data-no-syncs>No company has one.</p>"}</section>
    <section id="usage"></section>`);
  await showUsage($("#usage"), "/usage");
}

async function passwordView(paint) {
  paint(`<section><h1>${esc(state.me.email)}</h1><p>${esc(loginRoleName(state.me.role))}</p></section>${passwordHtml}`);
  wirePassword();
}

// An end user: its own account and aliases, and its names to change.
async function accountView(paint) {
  const u = await api("GET", "/users/" + state.me.user_id);
  paint(`<section><h1>My account</h1><p>${esc(u.address)} (${esc(roleName(u.role))})</p>
    <form id="names" class="row"><label>First name <input name="first_name" value="${esc(u.first_name)}"></label>
    <label>Surname <input name="surname" value="${esc(u.surname)}"></label><button>Save</button></form>
    <h2>Aliases</h2><ul id="aliases">${u.aliases.map((a) => `<li>${esc(a.address)}</li>`).join("") || "<li>none</li>"}</ul></section>
    ${passwordHtml}`);
  wirePassword();
  $("#names").onsubmit = async (ev) => {
    ev.preventDefault();
    try { await api("PATCH", "/users/" + state.me.user_id, Object.fromEntries(new FormData(ev.target))); say("saved"); }
    catch (e) { say(e.message, false); }
  };
}

const views = { users: usersView, discovery: discoveryView, invalid: invalidView,
  settings: settingsView, import: importView, audit: auditView, domains: domainsView,
  company: companyView, password: passwordView, gateway: gatewayView, "mail-log": mailLogView };

// Draws a page: fn is show (the page the address names) or a view drawn again (a new search,
// another page of its list, after a change), called with the paint that puts its HTML in place.
// Only the draw asked for last paints: an older one whose data comes later (the user went on)
// stops at paint, and never draws over the page shown or a form being filled in.
async function draw(fn) {
  // A view drawn again after a change its page made: not once the user has gone to another page.
  if (fn !== show && fn !== viewAt()) return;
  const turn = (state.turn += 1);
  const paint = (html) => {
    if (turn !== state.turn) throw new Stale();
    main().innerHTML = html;
  };
  try { await fn(paint); } catch (e) {
    if (e instanceof Stale || turn !== state.turn) return;
    if (e.status === 401) { state.me = null; return login(paint); }
    paint(`<section class="error">${esc(e.message)}</section>`);
  }
}
const route = () => draw(show);

// What paint throws for a draw that is no longer the last one asked for.
class Stale extends Error {}

async function show(paint) {
  const reset = location.hash.match(/^#\/reset\/([\w-]+)$/);
  if (reset) return resetView(paint, reset[1]);
  if (!state.me) return login(paint);
  if (state.me.role === "end_user") return accountView(paint);
  // "#/mail-log?address=bob@acme.example": a page, and what it is to show.
  const [name, query] = addressed();
  const params = new URLSearchParams(query || "");
  if (name === "mail-log" && params.has("address")) {
    state.mailLog = { address: params.get("address"), result: params.get("result") || "", every: false };
    state.pages["mail-log"] = 0;
  }
  const view = viewAt();
  document.querySelectorAll("#nav a").forEach((a) =>
    a.classList.toggle("active", a.hash === "#/" + (view === userView ? "users" : name)));
  await view(paint);
}

// The page the address names, and what follows its "?".
const addressed = () => (location.hash.replace("#/", "") || "users").split("?");

// The view of the page the address names (#/user/ID: one user, under Users).
function viewAt() {
  const [name] = addressed();
  return /^user\/\d+$/.test(name) ? userView : views[name] || usersView;
}

// An operator turns to another company: the lists start again at their first page.
function atCompany(name) {
  Object.assign(state, { company: name, pages: {}, auditObject: "", auditAction: "", invalidSearch: "", discoveredSearch: "",
    mailLog: null,
    userQuery: { search: "", role: "", source: "", quiet: "", offset: 0 } });
}

async function start() {
  try { state.me = await api("GET", "/me"); } catch { state.me = null; }
  $("#logout").hidden = !state.me;
  $("#nav").hidden = !state.me || state.me.role === "end_user";
  $("#nav-gateway").hidden = !state.me || state.me.role !== "operator";
  $("#who").textContent = "";
  if (state.me) {
    state.csrf = state.me.csrf_token;
    $("#who").innerHTML = state.me.role === "end_user" ? esc(state.me.email)
      : `<a href="#/password" title="change your password">${esc(state.me.email)}</a>`;
    if (state.me.role === "operator") {
      const list = (await api("GET", "/companies")).items;
      const sel = $("#company");
      sel.innerHTML = list.map((c) => `<option>${esc(c.name)}</option>`).join("");
      sel.hidden = false;
      state.company = state.company || (list[0] ? list[0].name : "");
      sel.value = state.company;
      sel.onchange = () => { atCompany(sel.value); route(); };
    } else {
      state.company = state.me.company;
    }
  }
  route();
}

$("#logout").onclick = async () => { await api("POST", "/logout", {}).catch(() => {}); state.me = null; start(); };
window.addEventListener("hashchange", route);
start();
