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
}

function loggedIn(body, text) {
  sessionStorage.setItem(TOKEN_KEY, body.token);
  sessionStorage.setItem(NOTICE_KEY, String(body.failedAttempts || 0));
  challenge = null;
  $("login-code").value = "";
  $("login-password").value = "";
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
  if (res.ok && res.body.token) { loggedIn(res.body, "Logged in."); return; }
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
  const res = await api("POST", "/api/login/2fa", { challenge, code: $("login-code").value, email: lastEmail });
  if (res.ok && res.body.token) {
    loggedIn(res.body, "Logged in with two-factor authentication.");
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

$("setup-start").addEventListener("click", async () => {
  const res = await api("POST", "/api/2fa/setup");
  if (!res.ok) { say("error", res.body.error || "cannot start the setup"); return; }
  // The SVG comes from this server's QR encoder (the crate), not from user input.
  $("qr").innerHTML = res.body.qrSvg;
  $("setup-secret").textContent = res.body.secret;
  $("setup").hidden = false;
  $("setup-start").hidden = true;
  say("notice", "Scan the QR code, then enter the code your app shows.");
  $("setup-code").focus();
});

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

refresh();
