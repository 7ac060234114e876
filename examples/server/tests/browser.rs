//! The demo page in headless Chromium through WebDriver (fantoccini + chromedriver): sign up,
//! turn on 2FA (the secret read from the page, the code computed with the crate), log out, log
//! in with a code, log out, let an attacker lock the account's password budget, log in with a
//! backup code all the same (the browser's device cookie), see the failed-attempts banner and
//! change the password from it. A second session adds another authenticator app in the Security
//! panel, logs in with each, ticks "remember this browser", logs in again without a code, revokes
//! the browser in the panel and is asked for a code again. Runs when `TWOFACTOR_BROWSER=1`.
//! Screenshots go to `target/browser-screenshot*.png`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use server_common::{Http, Server, TempDir, switch_on, totp_at, unix_now, wait_for_step_room};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver as a child process, killed on drop.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `target/` (honours CARGO_TARGET_DIR: this test binary lives in target/<profile>/deps).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

async fn connect(port: u16, profile: &TempDir) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                "--window-size=1000,1300",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let mut last = None;
    for _ in 0..100 {
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => return c,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("cannot start a Chromium session through chromedriver: {last:?}");
}

async fn text(c: &Client, id: &str) -> String {
    c.find(Locator::Id(id)).await.unwrap().text().await.unwrap()
}

async fn fill(c: &Client, id: &str, value: &str) {
    let e = c.find(Locator::Id(id)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

async fn click(c: &Client, id: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Waits until the element is displayed (or fails with the page's message).
async fn wait_visible(c: &Client, id: &str) {
    for _ in 0..100 {
        if let Ok(e) = c.find(Locator::Id(id)).await
            && e.is_displayed().await.unwrap_or(false)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let message = text(c, "message").await;
    panic!("#{id} never became visible; the page says: {message:?}");
}

/// Waits until `#id`'s text satisfies `pred`; returns it.
async fn wait_text(c: &Client, id: &str, pred: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        last = text(c, id).await;
        if pred(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let message = text(c, "message").await;
    panic!("#{id} text stayed {last:?}; the page says: {message:?}");
}

async fn log_in(c: &Client, email: &str, password: &str) {
    fill(c, "login-email", email).await;
    fill(c, "login-password", password).await;
    click(c, "login-submit").await;
}

async fn log_out(c: &Client) {
    click(c, "logout").await;
    wait_visible(c, "login-form").await;
}

async fn save_screenshot(c: &Client, name: &str) -> PathBuf {
    let png = c.screenshot().await.unwrap();
    let path = target_dir().join(name);
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
    path
}

/// Everything a browser test runs on: a server on a fresh SQLite file, chromedriver and a
/// Chromium session with a profile of its own (dropped in reverse order).
struct Browser {
    client: Client,
    _driver: Driver,
    server: Server,
    _profile: TempDir,
    _dir: TempDir,
}

/// Starts the lot, or `None` when `TWOFACTOR_BROWSER` is off.
async fn start_browser(tag: &str) -> Option<Browser> {
    start_browser_with(tag, &[]).await
}

/// [`start_browser`] with extra environment for the server.
async fn start_browser_with(tag: &str, env: &[(&str, &str)]) -> Option<Browser> {
    if !switch_on("TWOFACTOR_BROWSER", "browser test") {
        return None;
    }
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(tool).exists(),
            "TWOFACTOR_BROWSER is set but {tool} is missing (apt-get install chromium chromium-driver)"
        );
    }
    let dir = TempDir::new(tag);
    let profile = TempDir::new(&format!("{tag}-profile"));
    let server = Server::start_with(
        dir.path(),
        &format!("sqlite://{}", dir.path().join("demo.db").display()),
        env,
    );
    let port = free_port();
    let driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start chromedriver"),
    );
    let client = connect(port, &profile).await;
    Some(Browser {
        client,
        _driver: driver,
        server,
        _profile: profile,
        _dir: dir,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_enable_2fa_and_log_in_with_code_and_backup_code() {
    let Some(b) = start_browser("browser").await else {
        return;
    };
    let result = drive(&b.client, &b.server).await;
    let _ = b.client.clone().close().await;
    result.unwrap();
}

async fn drive(c: &Client, server: &Server) -> Result<(), String> {
    let email = "grace@example.com";
    let password = "a long browser password";
    c.goto(&server.base).await.map_err(|e| e.to_string())?;

    // Sign up: the page logs in right after.
    fill(c, "signup-email", email).await;
    fill(c, "signup-password", password).await;
    click(c, "signup-submit").await;
    wait_visible(c, "account").await;
    assert_eq!(text(c, "account-email").await, email);
    assert_eq!(text(c, "twofa-state").await, "off");

    // Turn on 2FA: QR code and secret on the page; a wrong code first, shown in words.
    click(c, "setup-start").await;
    wait_visible(c, "setup").await;
    let secret = wait_text(c, "setup-secret", |t| !t.is_empty()).await;
    let svg = c
        .find(Locator::Css("#qr svg"))
        .await
        .map_err(|e| format!("no QR SVG: {e}"))?;
    assert!(svg.is_displayed().await.unwrap());
    save_screenshot(c, "browser-screenshot-setup.png").await;
    wait_for_step_room(10);
    let now = unix_now();
    let good = totp_at(&secret, now);
    let wrong = if good == "000000" { "111111" } else { "000000" };
    fill(c, "setup-code", wrong).await;
    click(c, "setup-confirm").await;
    let error = wait_text(c, "message", |t| t.contains("not accepted")).await;
    assert!(error.contains("clock"), "no clock-drift hint: {error}");
    fill(c, "setup-code", &good).await;
    click(c, "setup-confirm").await;
    wait_visible(c, "backup-panel").await;
    let codes: Vec<String> = {
        let items = c
            .find_all(Locator::Css("#backup-codes li"))
            .await
            .map_err(|e| e.to_string())?;
        let mut v = Vec::new();
        for li in items {
            v.push(li.text().await.unwrap());
        }
        v
    };
    assert_eq!(codes.len(), 8, "{codes:?}");
    wait_text(c, "twofa-state", |t| t == "on").await;
    save_screenshot(c, "browser-screenshot-codes.png").await;
    click(c, "codes-saved").await;
    wait_visible(c, "manage").await;
    assert_eq!(text(c, "backup-remaining").await, "8");

    // Log out; log in with a TOTP code (the next step's: the current one is used up).
    log_out(c).await;
    log_in(c, email, password).await;
    wait_visible(c, "second-factor").await;
    fill(c, "login-code", &totp_at(&secret, now + 30)).await;
    click(c, "login-code-submit").await;
    wait_visible(c, "account").await;
    wait_text(c, "twofa-state", |t| t == "on").await;

    // Log out. An attacker elsewhere guesses the password until the account's budget is spent.
    log_out(c).await;
    let http = Http::new(&server.base);
    let mut refused = 0;
    for i in 0..30 {
        let r = http
            .post(
                "/api/login",
                None,
                json!({"email": email, "password": format!("guess {i}")}),
            )
            .await;
        refused += usize::from(r.status.as_u16() == 429);
    }
    assert_eq!(refused, 20, "10 guesses checked, the rest refused");
    let r = http
        .post(
            "/api/login",
            None,
            json!({"email": email, "password": password}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 429, "the attacker is locked out: {r:?}");

    // This browser holds the account's device cookie (HttpOnly, invisible to the page's
    // script) from the code login: it still gets in, here with a backup code in lower case.
    let visible = c
        .execute("return document.cookie", vec![])
        .await
        .map_err(|e| e.to_string())?;
    assert!(
        !visible.as_str().unwrap_or_default().contains("tf_device_"),
        "the device token is readable by scripts: {visible}"
    );
    log_in(c, email, password).await;
    wait_visible(c, "second-factor").await;
    fill(c, "login-code", &codes[0].to_lowercase()).await;
    click(c, "login-code-submit").await;
    wait_visible(c, "account").await;
    wait_text(c, "backup-remaining", |t| t == "7").await;
    let notice = text(c, "message").await;
    assert!(notice.contains("Logged in"), "{notice}");

    // The owner is told, and changes the password from the banner, with a code of the app (the
    // step after the login's): only an established app's code ends the lockout, a backup code
    // would not.
    wait_visible(c, "failures-banner").await;
    let banner = text(c, "failures-banner").await;
    assert!(
        banner.contains("10 failed attempts since your last login"),
        "{banner}"
    );
    save_screenshot(c, "browser-screenshot.png").await;
    click(c, "failures-change").await;
    wait_visible(c, "password").await;
    wait_visible(c, "password-code").await;
    let new_password = "a new browser password";
    fill(c, "password-current", password).await;
    fill(c, "password-new", new_password).await;
    let next_step = (now + 30) - (now + 30) % 30;
    let waited = unix_now();
    if waited < next_step {
        tokio::time::sleep(Duration::from_secs(next_step - waited)).await;
    }
    fill(c, "password-code", &totp_at(&secret, now + 60)).await;
    click(c, "password-submit").await;
    wait_text(c, "message", |t| t.contains("Password changed")).await;
    wait_text(c, "backup-remaining", |t| t == "7").await;
    assert!(
        !c.find(Locator::Id("failures-banner"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    let r = http
        .post(
            "/api/login",
            None,
            json!({"email": email, "password": new_password}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "the new password works: {r:?}");
    save_screenshot(c, "browser-screenshot-password.png").await;

    // Too many wrong codes: the page says how long to wait (from Retry-After) and disables the
    // form's buttons meanwhile. The password change cleared the user's budget (a new password
    // ends a lockout), so five failures reach the limit.
    let now = unix_now();
    let current = totp_at(&secret, now);
    let wrong = if current == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        fill(c, "manage-code", wrong).await;
        click(c, "regenerate-codes").await;
        wait_text(c, "message", |t| t.contains("not accepted")).await;
        c.execute(
            "document.getElementById('message').textContent = ''",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    }
    fill(c, "manage-code", wrong).await;
    click(c, "regenerate-codes").await;
    let waiting = wait_text(c, "message", |t| t.contains("Too many attempts")).await;
    assert!(waiting.contains(" s "), "no wait shown: {waiting}");
    let enabled = c
        .find(Locator::Id("regenerate-codes"))
        .await
        .map_err(|e| e.to_string())?
        .is_enabled()
        .await
        .map_err(|e| e.to_string())?;
    assert!(!enabled, "buttons stay enabled during the wait");
    save_screenshot(c, "browser-screenshot-wait.png").await;
    Ok(())
}

/// How many elements match `css` right now.
async fn count(c: &Client, css: &str) -> usize {
    c.find_all(Locator::Css(css)).await.map_or(0, |v| v.len())
}

/// Waits until `n` elements match `css`.
async fn wait_count(c: &Client, css: &str, n: usize) {
    let mut last = 0;
    for _ in 0..100 {
        last = count(c, css).await;
        if last == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let message = text(c, "message").await;
    panic!("{css}: {last} elements, not {n}; the page says: {message:?}");
}

async fn click_css(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn security_panel_second_authenticator_and_trusted_browser() {
    let Some(b) = start_browser("browser-security").await else {
        return;
    };
    let result = drive_security(&b.client, &b.server).await;
    let _ = b.client.clone().close().await;
    result.unwrap();
}

async fn drive_security(c: &Client, server: &Server) -> Result<(), String> {
    let email = "henry@example.com";
    let password = "a long browser password";
    c.goto(&server.base).await.map_err(|e| e.to_string())?;
    fill(c, "signup-email", email).await;
    fill(c, "signup-password", password).await;
    click(c, "signup-submit").await;
    wait_visible(c, "account").await;
    // The panel is for accounts with 2FA on.
    assert!(
        !c.find(Locator::Id("security"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );

    // Turn on 2FA. Every code below is of step T-1, T or T+1 (valid while the server is in
    // step T or T+1): T-1 confirms each app, T and T+1 log in.
    click(c, "setup-start").await;
    wait_visible(c, "setup").await;
    let home = wait_text(c, "setup-secret", |t| !t.is_empty()).await;
    wait_for_step_room(25);
    let t = unix_now();
    fill(c, "setup-code", &totp_at(&home, t - 30)).await;
    click(c, "setup-confirm").await;
    wait_visible(c, "backup-panel").await;
    let mut codes = Vec::new();
    for li in c
        .find_all(Locator::Css("#backup-codes li"))
        .await
        .map_err(|e| e.to_string())?
    {
        codes.push(li.text().await.map_err(|e| e.to_string())?);
    }
    assert_eq!(codes.len(), 8, "{codes:?}");
    click(c, "codes-saved").await;
    wait_visible(c, "security").await;
    wait_count(c, "#authenticator-list li", 1).await;
    let first = text(c, "authenticator-list").await;
    assert!(first.contains("Authenticator app"), "{first}");
    // The only app has no Remove button (turning 2FA off removes it).
    assert_eq!(count(c, "#authenticator-list button.remove").await, 0);
    wait_visible(c, "device-none").await;

    // Add a second app: a current code from the first, a name, then the new QR code and a code
    // from the new app.
    click(c, "auth-add-start").await;
    wait_visible(c, "auth-action-form").await;
    fill(c, "auth-name", "Work phone").await;
    fill(c, "auth-code", &totp_at(&home, t)).await;
    click(c, "auth-action-submit").await;
    wait_visible(c, "auth-enrol").await;
    let work = wait_text(c, "auth-secret", |t| !t.is_empty()).await;
    assert_ne!(work, home);
    let svg = c
        .find(Locator::Css("#auth-qr svg"))
        .await
        .map_err(|e| format!("no QR SVG: {e}"))?;
    assert!(svg.is_displayed().await.unwrap());
    fill(c, "auth-confirm-code", &totp_at(&work, t - 30)).await;
    click(c, "auth-confirm-submit").await;
    wait_text(c, "message", |m| m.contains("is added")).await;
    wait_count(c, "#authenticator-list li", 2).await;
    assert!(
        !c.find(Locator::Id("auth-enrol"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );

    // Rename the first one.
    click_css(
        c,
        "#authenticator-list li[data-name='Authenticator app'] button.rename",
    )
    .await;
    wait_visible(c, "auth-action-form").await;
    fill(c, "auth-name", "Home phone").await;
    click(c, "auth-action-submit").await;
    wait_count(c, "#authenticator-list li[data-name='Home phone']", 1).await;
    wait_count(c, "#authenticator-list li[data-name='Work phone']", 1).await;
    save_screenshot(c, "browser-screenshot-security.png").await;

    // Log in with the work phone.
    log_out(c).await;
    log_in(c, email, password).await;
    wait_visible(c, "second-factor").await;
    fill(c, "login-code", &totp_at(&work, t)).await;
    click(c, "login-code-submit").await;
    wait_visible(c, "account").await;
    wait_count(c, "#authenticator-list li", 2).await;

    // Log in with the home phone, ticking "remember this browser".
    log_out(c).await;
    log_in(c, email, password).await;
    wait_visible(c, "second-factor").await;
    fill(c, "login-code", &totp_at(&home, t + 30)).await;
    click(c, "login-remember").await;
    click(c, "login-code-submit").await;
    wait_visible(c, "account").await;
    wait_text(c, "message", |m| m.contains("remembered for 30 days")).await;
    wait_count(c, "#device-list li", 1).await;
    let devices = text(c, "device-list").await;
    assert!(devices.contains("Chrome on Linux"), "{devices}");
    assert!(devices.contains("(this browser)"), "{devices}");
    // Still invisible to the page's script.
    let visible = c
        .execute("return document.cookie", vec![])
        .await
        .map_err(|e| e.to_string())?;
    assert!(
        !visible.as_str().unwrap_or_default().contains("tf_device_"),
        "the device token is readable by scripts: {visible}"
    );

    // Log out and in: the password is enough on this browser.
    log_out(c).await;
    log_in(c, email, password).await;
    wait_visible(c, "account").await;
    let notice = wait_text(c, "message", |m| m.contains("Logged in")).await;
    assert!(notice.contains("trusted"), "{notice}");
    save_screenshot(c, "browser-screenshot-trusted.png").await;

    // Revoke it in the panel: the next login asks for a code.
    click_css(c, "#device-list li button.revoke").await;
    wait_text(c, "message", |m| m.contains("no longer trusted")).await;
    wait_count(c, "#device-list li", 0).await;
    wait_visible(c, "device-none").await;
    log_out(c).await;
    log_in(c, email, password).await;
    wait_visible(c, "second-factor").await;
    // The checkbox starts unticked.
    let ticked = c
        .find(Locator::Id("login-remember"))
        .await
        .map_err(|e| e.to_string())?
        .prop("checked")
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(ticked.as_deref(), Some("false"));
    fill(c, "login-code", &totp_at(&work, t + 30)).await;
    click(c, "login-code-submit").await;
    wait_visible(c, "account").await;
    wait_count(c, "#device-list li", 0).await;

    // A new phone for the work phone, with a backup code: a new factor, so the new phone is
    // added at once but the work phone's removal is only scheduled, and the panel says so.
    click_css(
        c,
        "#authenticator-list li[data-name='Work phone'] button.replace",
    )
    .await;
    wait_visible(c, "auth-action-form").await;
    fill(c, "auth-name", "Work phone 2").await;
    fill(c, "auth-code", &codes[0]).await;
    click(c, "auth-action-submit").await;
    wait_visible(c, "auth-enrol").await;
    let work2 = wait_text(c, "auth-secret", |t| !t.is_empty()).await;
    fill(c, "auth-confirm-code", &totp_at(&work2, unix_now())).await;
    click(c, "auth-confirm-submit").await;
    wait_text(c, "message", |m| {
        m.contains("Removal of Work phone scheduled for") && m.contains("trusted browser cancel it")
    })
    .await;
    wait_count(c, "#authenticator-list li[data-name='Work phone 2']", 1).await;
    wait_count(c, "#authenticator-list li", 3).await;
    wait_visible(c, "changes-wrap").await;
    wait_count(c, "#change-list li", 1).await;
    let changes = text(c, "change-list").await;
    assert!(
        changes.contains("Removal of Work phone scheduled for"),
        "{changes}"
    );
    let listing = text(c, "authenticator-list").await;
    assert!(listing.contains("new until"), "{listing}");
    save_screenshot(c, "browser-screenshot-scheduled.png").await;

    // Remove the new one: its own code is refused, a backup code only schedules it.
    click_css(
        c,
        "#authenticator-list li[data-name='Work phone 2'] button.remove",
    )
    .await;
    wait_visible(c, "auth-action-form").await;
    fill(c, "auth-code", &totp_at(&work2, unix_now() + 30)).await;
    click(c, "auth-action-submit").await;
    wait_text(c, "message", |m| m.contains("another app")).await;
    wait_count(c, "#authenticator-list li", 3).await;
    fill(c, "auth-code", &codes[1]).await;
    click(c, "auth-action-submit").await;
    wait_text(c, "message", |m| {
        m.contains("Removal of Work phone 2 scheduled for")
            && m.contains("your other apps or a trusted browser cancel it")
    })
    .await;
    wait_count(c, "#change-list li", 2).await;
    wait_count(c, "#authenticator-list li", 3).await;

    // A code of the first app (the step after the three it used) removes the work phone at
    // once, and cancels the scheduled changes.
    let next_step = (t + 30) - (t + 30) % 30;
    let now = unix_now();
    if now < next_step {
        tokio::time::sleep(Duration::from_secs(next_step - now)).await;
    }
    click_css(
        c,
        "#authenticator-list li[data-name='Work phone'] button.remove",
    )
    .await;
    wait_visible(c, "auth-action-form").await;
    fill(c, "auth-code", &totp_at(&home, t + 60)).await;
    click(c, "auth-action-submit").await;
    wait_text(c, "message", |m| m.contains("Work phone was removed")).await;
    wait_count(c, "#authenticator-list li[data-name='Work phone']", 0).await;
    wait_count(c, "#authenticator-list li", 2).await;
    wait_count(c, "#change-list li", 0).await;
    assert!(
        !c.find(Locator::Id("changes-wrap"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    wait_text(c, "backup-remaining", |t| t == "6").await;
    Ok(())
}

/// An app that ignored the SHA-256 of the QR code: the page says so and its button sets up
/// again with SHA-1 / 6 digits / 30 s, whose code turns 2FA on.
#[tokio::test(flavor = "multi_thread")]
async fn app_that_ignored_the_settings_is_offered_the_defaults() {
    let Some(b) = start_browser_with(
        "browser-defaults",
        &[("TWOFACTOR_TOTP_ALGORITHM", "SHA256")],
    )
    .await
    else {
        return;
    };
    let result = drive_defaults(&b.client, &b.server).await;
    let _ = b.client.clone().close().await;
    result.unwrap();
}

async fn drive_defaults(c: &Client, server: &Server) -> Result<(), String> {
    c.goto(&server.base).await.map_err(|e| e.to_string())?;
    fill(c, "signup-email", "heidi@example.com").await;
    fill(c, "signup-password", "a long browser password").await;
    click(c, "signup-submit").await;
    wait_visible(c, "account").await;
    click(c, "setup-start").await;
    wait_visible(c, "setup").await;
    let secret = wait_text(c, "setup-secret", |t| !t.is_empty()).await;
    wait_for_step_room(15);
    let now = unix_now();
    // What an app that ignored the settings shows: the SHA-1 code of the secret.
    fill(c, "setup-code", &totp_at(&secret, now)).await;
    click(c, "setup-confirm").await;
    wait_text(c, "message", |t| t.contains("ignored")).await;
    assert_eq!(
        text(c, "setup-defaults").await,
        "Set up again with standard settings (SHA-1, 6 digits, 30 s)"
    );
    assert_eq!(text(c, "twofa-state").await, "off");
    click(c, "setup-defaults").await;
    let fresh = wait_text(c, "setup-secret", |t| !t.is_empty() && t != secret).await;
    fill(c, "setup-code", &totp_at(&fresh, now - 30)).await;
    click(c, "setup-confirm").await;
    wait_visible(c, "backup-panel").await;
    wait_text(c, "twofa-state", |t| t == "on").await;
    Ok(())
}
