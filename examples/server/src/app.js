// The demo page's script (a file of its own: the page's CSP allows no inline scripts).
"use strict";
const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "twofactor-demo-token";
// Failed attempts since the previous login, as the login response said (kept for this tab).
const NOTICE_KEY = "twofactor-demo-failures";
let twoFactorOn = false;
let challenge = null;
let lastEmail = "";
let waitTimer = null;

function say(kind, text) {
  const box = $("message");
  box.innerHTML = "";
  if (!text) return;
  const p = document.createElement("p");
  p.className = kind;
  p.id = kind === "error" ? "error" : "notice";
  p.textContent = text;
  box.appendChild(p);
}

// Calls the API; returns {ok, status, body, retryAfter}. Never throws.
async function api(method, path, body) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    let json = {};
    try { json = await r.json(); } catch (_) { /* empty body */ }
    const retryAfter = parseInt(r.headers.get("Retry-After") || "0", 10) || 0;
    return { ok: r.ok, status: r.status, body: json, retryAfter };
  } catch (e) {
    return { ok: false, status: 0, body: { error: "cannot reach the server" }, retryAfter: 0 };
  }
}

// Words for a failed code check, by status.
function explainCodeFailure(res, form) {
  if (res.status === 429) {
    lockForm(form, res.retryAfter || 60);
    return;
  }
  if (res.status === 401 && form.id !== "code-form") {
    // An authenticated form: 401 means the session ended, not a wrong code.
    refresh();
    return;
  }
  if (res.status === 401 || res.status === 400) {
    say("error", "That code was not accepted: it is wrong, expired, or was already used. " +
      "Codes change every 30 seconds; wait for the next one. If every code fails, your phone's " +
      "clock is probably off: turn on automatic date and time on the phone." +
      (form.id === "code-form" ? " If you entered your password more than 5 minutes ago, " +
        "cancel and log in again." : ""));
    return;
  }
  say("error", res.body.error || ("request failed (" + res.status + ")"));
}

// Too many attempts: disable the form and count down the wait from Retry-After.
function lockForm(form, seconds) {
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  let left = seconds;
  const tick = () => {
    if (left <= 0) {
      clearInterval(waitTimer);
      buttons.forEach((b) => { b.disabled = false; });
      say("notice", "You can try again now.");
      return;
    }
    const m = Math.floor(left / 60), s = left % 60;
    say("error", "Too many attempts. For your security, wait " +
      (m > 0 ? m + " min " : "") + s + " s before trying again.");
    left -= 1;
  };
  clearInterval(waitTimer);
  tick();
  waitTimer = setInterval(tick, 1000);
}

function show(view) {
  $("logged-out").hidden = view !== "logged-out";
  $("second-factor").hidden = view !== "second-factor";
  $("account").hidden = view !== "account";
  if (view !== "account") {
    $("setup").hidden = true;
    $("backup-panel").hidden = true;
    $("manage").hidden = true;
    $("password").hidden = true;
    $("security").hidden = true;
    closeAuthForms();
  }
}

// "N failed attempts since your last login": from the login response, plus failures on this
// account's second factor since then (GET /api/me).
function showFailures(sinceThisLogin) {
  const n = (parseInt(sessionStorage.getItem(NOTICE_KEY) || "0", 10) || 0) + (sinceThisLogin || 0);
  $("failures-banner").hidden = n === 0;
  $("failures-text").textContent = n === 1
    ? "1 failed attempt since your last login."
    : n + " failed attempts since your last login.";
}

function openPasswordForm() {
  $("password").hidden = false;
  $("password-code-wrap").hidden = !twoFactorOn;
  $("password-code").required = twoFactorOn;
  $("password-current").focus();
}

async function refresh() {
  if (!sessionStorage.getItem(TOKEN_KEY)) { show("logged-out"); return; }
  const res = await api("GET", "/api/me");
  if (res.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    show("logged-out");
    say("error", "Your session ended. Log in again.");
    return;
  }
  if (!res.ok) { say("error", res.body.error || "cannot load your account"); return; }
  show("account");
  $("account-email").textContent = res.body.email;
  const on = res.body.twoFactorEnabled;
  twoFactorOn = on;
  showFailures(res.body.failuresSinceLogin);
  $("twofa-state").textContent = on ? "on" : "off";
  $("twofa-state").className = "pill " + (on ? "on" : "off");
  $("backup-remaining-wrap").hidden = !on;
  $("backup-remaining").textContent = String(res.body.backupCodesRemaining);
  $("setup-start").hidden = on || !$("setup").hidden;
  $("manage").hidden = !on || !$("backup-panel").hidden;
  $("security").hidden = !on;
  if (on) { loadSecurity(); } else { closeAuthForms(); }
}

function loggedIn(body, text) {
  sessionStorage.setItem(TOKEN_KEY, body.token);
  sessionStorage.setItem(NOTICE_KEY, String(body.failedAttempts || 0));
  challenge = null;
  $("login-code").value = "";
  $("login-password").value = "";
  $("login-remember").checked = false;
  say("notice", text);
  refresh();
}

$("signup-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const email = $("signup-email").value, password = $("signup-password").value;
  const res = await api("POST", "/api/signup", { email, password });
  if (res.status === 201) {
    $("signup-password").value = "";
    const login = await api("POST", "/api/login", { email, password });
    if (login.ok && login.body.token) { loggedIn(login.body, "Account created. You are logged in."); }
    else { say("notice", "Account created. Log in."); }
  } else if (res.status === 409) {
    say("error", "An account with this email already exists. Log in instead.");
  } else {
    say("error", res.body.error || "sign-up failed");
  }
});

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  lastEmail = $("login-email").value;
  const res = await api("POST", "/api/login", { email: lastEmail, password: $("login-password").value });
  if (res.ok && res.body.token) {
    loggedIn(res.body, res.body.trustedBrowser
      ? "Logged in. This browser is trusted, so no code was needed."
      : "Logged in.");
    return;
  }
  if (res.ok && res.body.requiresTwoFactor) {
    challenge = res.body.challenge;
    $("login-password").value = "";
    show("second-factor");
    say("notice", "Password accepted. Now enter your two-factor code.");
    $("login-code").focus();
    return;
  }
  if (res.status === 429) { lockForm($("login-form"), res.retryAfter || 60); return; }
  if (res.status === 401) { say("error", "Wrong email or password."); return; }
  say("error", res.body.error || "login failed");
});

$("code-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  // The email picks this account's device cookie (HttpOnly: the script never sees the token).
  const remember = $("login-remember").checked;
  const res = await api("POST", "/api/login/2fa", { challenge, code: $("login-code").value, email: lastEmail, remember });
  if (res.ok && res.body.token) {
    loggedIn(res.body, remember
      ? "Logged in with two-factor authentication. This browser is remembered for 30 days."
      : "Logged in with two-factor authentication.");
    return;
  }
  $("login-code").value = "";
  explainCodeFailure(res, $("code-form"));
});

$("login-cancel").addEventListener("click", () => { challenge = null; show("logged-out"); say("", ""); });

$("logout").addEventListener("click", async () => {
  await api("POST", "/api/logout");
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(NOTICE_KEY);
  show("logged-out");
  say("notice", "Logged out.");
});

// Starts (or restarts) the setup and shows the QR code; `defaults` asks for SHA-1, 6 digits,
// 30 s whatever the server's settings, for an app that ignored them.
async function startSetup(defaults) {
  const res = await api("POST", "/api/2fa/setup", defaults ? { defaults: true } : undefined);
  if (!res.ok) { say("error", res.body.error || "cannot start the setup"); return; }
  // The SVG comes from this server's QR encoder (the crate), not from user input.
  $("qr").innerHTML = res.body.qrSvg;
  $("setup-secret").textContent = res.body.secret;
  const digits = (/[?&]digits=(\d+)/.exec(res.body.otpauthUri) || [null, "6"])[1];
  $("setup-code-label").textContent = digits + "-digit code";
  $("setup").hidden = false;
  $("setup-start").hidden = true;
  say("notice", (defaults ? "A new QR code with the standard settings: remove the old entry from your app, then scan this one. "
    : "Scan the QR code, then ") + "enter the code your app shows.");
  $("setup-code").focus();
}

$("setup-start").addEventListener("click", () => startSetup(false));

// The app showed codes for the standard settings, not the QR code's: say so and offer to start
// again with those (a button, not an inline handler: the CSP allows no inline script).
function offerDefaults(res) {
  say("error", res.body.error);
  const b = document.createElement("button");
  b.type = "button";
  b.id = "setup-defaults";
  b.textContent = "Set up again with standard settings (SHA-1, 6 digits, 30 s)";
  b.addEventListener("click", () => startSetup(true));
  $("message").appendChild(b);
}

$("setup-cancel").addEventListener("click", () => {
  $("setup").hidden = true; $("qr").innerHTML = ""; $("setup-secret").textContent = "";
  say("", ""); refresh();
});

function showCodes(codes, text) {
  const list = $("backup-codes");
  list.innerHTML = "";
  codes.forEach((c) => { const li = document.createElement("li"); li.textContent = c; list.appendChild(li); });
  $("backup-panel").hidden = false;
  $("manage").hidden = true;
  say("notice", text);
}

$("setup-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const res = await api("POST", "/api/2fa/verify-setup", { code: $("setup-code").value });
  $("setup-code").value = "";
  if (res.ok) {
    $("setup").hidden = true; $("qr").innerHTML = ""; $("setup-secret").textContent = "";
    showCodes(res.body.backupCodes, "Two-factor authentication is on. Save your backup codes now.");
    refresh();
    return;
  }
  if (res.status === 409 && res.body.offer === "enrol-with-defaults") { offerDefaults(res); return; }
  explainCodeFailure(res, $("setup-form"));
});

function codesText() {
  return Array.from($("backup-codes").children).map((li) => li.textContent).join("\n") + "\n";
}

$("copy-codes").addEventListener("click", async () => {
  try { await navigator.clipboard.writeText(codesText()); say("notice", "Backup codes copied."); }
  catch (_) { say("error", "Copying is not allowed here; select the codes and copy them by hand."); }
});

$("download-codes").addEventListener("click", () => {
  const blob = new Blob(["twofactor demo backup codes (each works once)\n\n" + codesText()], { type: "text/plain" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "twofactor-backup-codes.txt";
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
});

$("codes-saved").addEventListener("click", () => {
  $("backup-codes").innerHTML = "";
  $("backup-panel").hidden = true;
  say("", "");
  refresh();
});

$("manage-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const action = ev.submitter ? ev.submitter.dataset.action : "backup-codes";
  const res = await api("POST", "/api/2fa/" + action, { code: $("manage-code").value });
  $("manage-code").value = "";
  if (res.status === 202 && action === "disable") {
    say("notice", "Turning off two-factor authentication is scheduled for " + when(res.body.notBefore) +
      "; until then it stays on. Your other apps or a trusted browser cancel it.");
    refresh();
    return;
  }
  if (res.status === 202) {
    showCodes(res.body.backupCodes, "New backup codes, valid from " + when(res.body.notBefore) +
      ": your current codes keep working until then. Save these now. Your other apps or a " +
      "trusted browser cancel the change.");
    refresh();
    return;
  }
  if (res.status === 409 && res.body.scheduled) {
    say("error", "New backup codes are already scheduled for " + when(res.body.notBefore) +
      " (they were shown when you asked for them). Your other apps or a trusted browser cancel them.");
    return;
  }
  if (res.ok && action === "disable") { say("notice", "Two-factor authentication is off."); refresh(); return; }
  if (res.ok) { showCodes(res.body.backupCodes, "New backup codes: the old ones no longer work. Save these now."); refresh(); return; }
  explainCodeFailure(res, $("manage-form"));
});

$("password-start").addEventListener("click", openPasswordForm);
$("failures-change").addEventListener("click", openPasswordForm);

$("password-cancel").addEventListener("click", () => {
  $("password-current").value = ""; $("password-new").value = ""; $("password-code").value = "";
  $("password").hidden = true; say("", "");
});

$("password-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = { currentPassword: $("password-current").value, newPassword: $("password-new").value };
  if (twoFactorOn) body.code = $("password-code").value;
  const res = await api("POST", "/api/password", body);
  $("password-current").value = ""; $("password-code").value = "";
  if (res.ok) {
    $("password-new").value = "";
    $("password").hidden = true;
    sessionStorage.setItem(NOTICE_KEY, "0");
    say("notice", "Password changed. Your other sessions have ended.");
    refresh();
    return;
  }
  if (res.status === 429) { lockForm($("password-form"), res.retryAfter || 60); return; }
  if (res.status === 401) { refresh(); return; }
  say("error", res.body.error || ("request failed (" + res.status + ")"));
});

// ---- Security panel: authenticator apps and trusted browsers. ----

// The open action: {kind: "add" | "rename" | "remove" | "replace", id, name}.
let authAction = null;

function when(t) {
  return t ? new Date(t * 1000).toLocaleString() : "never";
}

function closeAuthForms() {
  authAction = null;
  $("auth-action-form").hidden = true;
  $("auth-enrol").hidden = true;
  $("auth-name").value = "";
  $("auth-code").value = "";
  $("auth-confirm-code").value = "";
  $("auth-qr").innerHTML = "";
  $("auth-secret").textContent = "";
}

// A list item's button; `label` names what it acts on, for screen readers.
function button(text, className, label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = text;
  b.setAttribute("aria-label", text + ": " + label);
  b.addEventListener("click", onClick);
  return b;
}

function item(title, meta) {
  const li = document.createElement("li");
  const name = document.createElement("span");
  name.className = "item-name";
  name.textContent = title;
  const info = document.createElement("span");
  info.className = "item-meta";
  info.textContent = meta;
  li.append(name, info);
  return li;
}

// Renders the two lists (names and labels as text, never as markup).
async function loadSecurity() {
  const [auths, devices] = await Promise.all([
    api("GET", "/api/2fa/authenticators"),
    api("GET", "/api/2fa/trusted-devices"),
  ]);
  if (auths.status === 401 || devices.status === 401) { refresh(); return; }
  if (!auths.ok || !devices.ok) {
    say("error", (auths.ok ? devices : auths).body.error || "cannot load the security settings");
    return;
  }
  // Due scheduled changes took effect while loading: the account state above may be stale.
  if ((auths.body.applied || []).length > 0) {
    say("notice", "A change you scheduled earlier has taken effect.");
    refresh();
    return;
  }
  const list = $("authenticator-list");
  list.innerHTML = "";
  const all = auths.body.authenticators;
  const changes = auths.body.scheduledChanges || [];
  const names = {};
  all.forEach((a) => { names[a.id] = a.name; });
  all.forEach((a) => {
    const li = item(a.name, "added " + when(a.createdAt) + " · last used " + when(a.lastUsedAt) +
      (a.newUntil ? " · new until " + when(a.newUntil) + " (its codes can only schedule removals)" : ""));
    li.dataset.id = a.id;
    li.dataset.name = a.name;
    const actions = document.createElement("span");
    actions.className = "item-actions";
    actions.append(
      button("Rename", "secondary rename", a.name, () => openAuthAction({ kind: "rename", id: a.id, name: a.name })),
      button("New phone", "secondary replace", a.name, () => openAuthAction({ kind: "replace", id: a.id, name: a.name })));
    // The only app goes with "Turn off" below, not here.
    if (all.length > 1) {
      actions.append(button("Remove", "danger remove", a.name, () => openAuthAction({ kind: "remove", id: a.id, name: a.name })));
    }
    li.appendChild(actions);
    list.appendChild(li);
  });
  $("auth-add-start").hidden = all.length >= auths.body.max;

  const clist = $("change-list");
  clist.innerHTML = "";
  changes.forEach((c) => {
    const li = item(changeText(c, names), "asked for " + when(c.requestedAt));
    li.dataset.id = c.id;
    li.dataset.kind = c.kind;
    clist.appendChild(li);
  });
  $("changes-wrap").hidden = changes.length === 0;

  const dlist = $("device-list");
  dlist.innerHTML = "";
  devices.body.devices.forEach((d) => {
    const li = item(d.thisBrowser ? d.label + " (this browser)" : d.label, "trusted since " + when(d.createdAt) + " · last used " + when(d.lastUsedAt) +
      " · until " + when(d.trustedUntil));
    li.dataset.id = d.id;
    const actions = document.createElement("span");
    actions.className = "item-actions";
    actions.appendChild(button("Revoke", "danger revoke", d.label, () => revokeDevice(d.id, d.label)));
    li.appendChild(actions);
    dlist.appendChild(li);
  });
  $("device-none").hidden = devices.body.devices.length > 0;
}

// A scheduled change in plain words.
function changeText(c, names) {
  const at = when(c.notBefore);
  const tail = "; your other apps or a trusted browser cancel it.";
  if (c.kind === "remove_authenticator") {
    return "Removal of " + (names[c.authenticator] || "an authenticator app") + " scheduled for " + at + tail;
  }
  if (c.kind === "regenerate_backup_codes") return "New backup codes take effect " + at + tail;
  if (c.kind === "disable") return "Two-factor authentication goes off " + at + tail;
  return "A change of your sign-in factors is scheduled for " + at + tail;
}

const AUTH_ACTIONS = {
  add: {
    title: () => "Add an authenticator app",
    hint: () => "Confirm it's you with a code, name the new app, then scan its QR code.",
    codeLabel: () => "A current code from an app you already have, or a backup code",
    name: true, code: true, submit: "Continue",
  },
  rename: {
    title: (a) => "Rename " + a.name,
    hint: () => "",
    name: true, code: false, submit: "Rename",
  },
  remove: {
    title: (a) => "Remove " + a.name,
    hint: (a) => "Confirm with a code from another app or a backup code: a code from " + a.name +
      " itself is not accepted. With a code from an app you have had for a while its codes stop " +
      "working at once; a backup code or a newly added app only schedules the removal.",
    codeLabel: () => "A code from another app, or a backup code",
    name: false, code: true, submit: "Remove",
  },
  replace: {
    title: (a) => "Replace " + a.name + " with a new phone",
    hint: (a) => "Confirm with a code from " + a.name + " (the old phone), another app or a backup " +
      "code, then scan the QR code with the new phone. " + a.name + " keeps working until the new " +
      "phone's code is confirmed; then it is removed.",
    codeLabel: (a) => "A code from " + a.name + ", another app, or a backup code",
    name: true, code: true, submit: "Continue",
  },
};

function openAuthAction(action) {
  closeAuthForms();
  authAction = action;
  const spec = AUTH_ACTIONS[action.kind];
  $("auth-action-title").textContent = spec.title(action);
  $("auth-action-hint").textContent = spec.hint(action);
  $("auth-name-wrap").hidden = !spec.name;
  $("auth-name").required = spec.name;
  $("auth-name").value = action.kind === "rename" ? action.name : (action.kind === "replace" ? "New phone" : "");
  $("auth-code-wrap").hidden = !spec.code;
  $("auth-code").required = spec.code;
  if (spec.code) $("auth-code-label").textContent = spec.codeLabel(action);
  $("auth-action-submit").textContent = spec.submit;
  $("auth-action-form").hidden = false;
  (spec.name ? $("auth-name") : $("auth-code")).focus();
}

$("auth-add-start").addEventListener("click", () => openAuthAction({ kind: "add" }));
$("auth-action-cancel").addEventListener("click", () => { closeAuthForms(); say("", ""); });
$("auth-confirm-cancel").addEventListener("click", () => { closeAuthForms(); say("", ""); });

// A failed Security request: wait on 429, log in again on 401, otherwise the server's words.
function securityFailure(res, form) {
  if (res.status === 429) { lockForm(form, res.retryAfter || 60); return; }
  if (res.status === 401) { refresh(); return; }
  say("error", res.body.error || ("request failed (" + res.status + ")"));
}

$("auth-action-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const action = authAction;
  if (!action) return;
  const name = $("auth-name").value, code = $("auth-code").value;
  let res;
  if (action.kind === "add") {
    res = await api("POST", "/api/2fa/authenticators/add", { name, code });
  } else if (action.kind === "replace") {
    res = await api("POST", "/api/2fa/authenticators/replace", { id: action.id, name, code });
  } else if (action.kind === "rename") {
    res = await api("POST", "/api/2fa/authenticators/rename", { id: action.id, name });
  } else {
    res = await api("POST", "/api/2fa/authenticators/remove", { id: action.id, code });
  }
  $("auth-code").value = "";
  if (!res.ok) { securityFailure(res, $("auth-action-form")); return; }
  if (res.status === 202 && action.kind === "remove") {
    closeAuthForms();
    say("notice", "Removal of " + action.name + " scheduled for " + when(res.body.notBefore) +
      "; your other apps or a trusted browser cancel it. Until then its codes keep working.");
    refresh();
    return;
  }
  if (action.kind === "rename" || action.kind === "remove") {
    closeAuthForms();
    say("notice", action.kind === "rename" ? "Renamed." : action.name + " was removed: its codes no longer work.");
    refresh();
    return;
  }
  // add or replace: the new app's QR code; the SVG comes from this server's QR encoder.
  $("auth-action-form").hidden = true;
  $("auth-qr").innerHTML = res.body.qrSvg;
  $("auth-secret").textContent = res.body.secret;
  $("auth-enrol").hidden = false;
  action.scheduledRemoval = res.body.scheduledRemoval || null;
  say("notice", "Scan the QR code with the new app, then enter the code it shows." +
    (action.scheduledRemoval ? " Removal of " + action.name + " scheduled for " +
      when(action.scheduledRemoval.notBefore) + "; your other apps or a trusted browser cancel it." : ""));
  $("auth-confirm-code").focus();
});

$("auth-confirm-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const action = authAction;
  const res = await api("POST", "/api/2fa/authenticators/confirm", { code: $("auth-confirm-code").value });
  $("auth-confirm-code").value = "";
  if (res.ok) {
    closeAuthForms();
    const removal = action && action.scheduledRemoval;
    say("notice", res.body.replaced
      ? "The new phone is set up. " + (action ? action.name : "The old one") + " was removed: its codes no longer work."
      : removal
        ? "The new phone is set up. Removal of " + action.name + " scheduled for " + when(removal.notBefore) +
          "; your other apps or a trusted browser cancel it."
        : "The new authenticator app is added. Its codes work from now on, as do your other apps'.");
    refresh();
    return;
  }
  explainCodeFailure(res, $("auth-confirm-form"));
});

async function revokeDevice(id, label) {
  const res = await api("POST", "/api/2fa/trusted-devices/revoke", { id });
  if (res.ok) {
    say("notice", label + " is no longer trusted: its next login asks for a code.");
  } else if (res.status === 401) {
    refresh();
    return;
  } else {
    say("error", res.body.error || "cannot revoke the browser");
  }
  loadSecurity();
}

refresh();
