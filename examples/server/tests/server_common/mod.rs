//! Shared by the demo's HTTP and browser tests: starts the `twofactor-server` binary as a child
//! process on a free port, a small JSON-over-HTTP client, and the account steps ([`account`]).
#![allow(dead_code)]

mod account;
#[allow(unused_imports)] // the browser tests drive the page, not these steps
pub use account::*;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// The fixed key the tests run the server with (never a production key).
pub const TEST_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// Is this switch on? When it is off: skip (print why), or fail under `CI=true`.
pub fn switch_on(name: &str, what: &str) -> bool {
    if std::env::var_os(name).is_some_and(|v| !v.is_empty()) {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{name} is not set but CI=true: the {what} must run in CI");
    }
    eprintln!("skipped: set {name} to run the {what}");
    false
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "twofactor-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for inspection: {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The server binary, built by cargo before it runs this crate's integration tests.
pub fn server_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_twofactor-server"))
}

/// A running server.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Where its stderr (the log) goes.
    pub log: PathBuf,
}

impl Server {
    /// Starts the server on a free port (`TWOFACTOR_ADDR=127.0.0.1:0`; it prints the bound
    /// address) in `dir`, on `database_url`, with the fixed test key.
    pub fn start(dir: &Path, database_url: &str) -> Self {
        Self::start_with(dir, database_url, &[])
    }

    pub fn start_with(dir: &Path, database_url: &str, env: &[(&str, &str)]) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let log = dir.join(format!("server-{}.log", N.fetch_add(1, Ordering::Relaxed)));
        let mut cmd = Command::new(server_binary());
        cmd.current_dir(dir)
            .env("TWOFACTOR_ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", database_url)
            .env("TWOFACTOR_KEY", TEST_KEY)
            .env("RUST_LOG", "debug")
            .env_remove("TWOFACTOR_BACKUP_PEPPER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("cannot start the server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server did not start; its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        Self { child, base, log }
    }

    /// Sends SIGTERM and waits (at most `limit`) for the exit status.
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A response: status, headers, parsed JSON body (or `Null` when the body is not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
    pub text: String,
}

impl Resp {
    /// The `error` field; panics with the whole response when it is missing.
    pub fn error(&self) -> &str {
        self.json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no JSON error in {self:?}"))
    }

    /// A string field of the JSON body.
    pub fn str(&self, key: &str) -> String {
        self.json[key]
            .as_str()
            .unwrap_or_else(|| panic!("no string {key:?} in {self:?}"))
            .to_owned()
    }

    /// `Retry-After` in seconds.
    pub fn retry_after(&self) -> Option<u64> {
        self.headers
            .get(header::RETRY_AFTER)?
            .to_str()
            .ok()?
            .parse()
            .ok()
    }
}

/// A minimal HTTP client for the server.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Body>,
    base: String,
}

impl Http {
    pub fn new(base: &str) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: base.to_owned(),
        }
    }

    /// Any request; `content_type` is sent only when given.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Resp {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        self.send(req.body(Body::from(body)).unwrap()).await
    }

    async fn send(&self, req: Request<Body>) -> Resp {
        let res = self.client.request(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            json,
            text,
        }
    }

    /// `POST` a JSON value.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.raw(
            Method::POST,
            path,
            token,
            Some("application/json"),
            serde_json::to_vec(&body).unwrap(),
        )
        .await
    }

    /// `POST` a JSON value with extra headers (`Cookie`, `X-Forwarded-For`, …).
    pub async fn post_with(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Value,
    ) -> Resp {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        self.send(
            req.body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        )
        .await
    }

    /// `GET` with extra headers (a `Cookie`, say).
    pub async fn get_with(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = Request::builder().uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }

    /// `GET` with this exact `Authorization` header value.
    pub async fn get_with_authorization(&self, path: &str, value: &str) -> Resp {
        let req = Request::builder()
            .uri(format!("{}{path}", self.base))
            .header(header::AUTHORIZATION, value)
            .body(Body::empty())
            .unwrap();
        self.send(req).await
    }

    /// `GET`.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.raw(Method::GET, path, token, None, Vec::new()).await
    }
}

/// Unix time now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The TOTP code for `secret` (base32, as returned by setup) at Unix time `t`, computed with
/// the crate.
pub fn totp_at(secret: &str, t: u64) -> String {
    let secret = twofactor::Secret::from_base32(secret).unwrap();
    let totp = twofactor::Totp::builder(&secret).build().unwrap();
    totp.generate_at(t).unwrap().as_str().to_owned()
}

/// Waits until at least `needed` seconds remain in the current 30-second step, so a sequence
/// of codes computed now is still valid (within ±1 step) when the server checks it.
pub fn wait_for_step_room(needed: u64) {
    let into = unix_now() % 30;
    if 30 - into < needed {
        std::thread::sleep(Duration::from_secs(30 - into));
    }
}

/// A PostgreSQL database of its own for one test: created from `TWOFACTOR_TEST_POSTGRES_URL`,
/// dropped on [`PgTestDb::drop_db`].
pub struct PgTestDb {
    admin_url: String,
    name: String,
    /// URL of the fresh database.
    pub url: String,
    dropped: bool,
}

impl PgTestDb {
    pub async fn create(admin_url: &str, tag: &str) -> Self {
        use sqlx::Connection as _;
        let name = format!(
            "twofactor_server_{tag}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                % 1_000_000_000
        );
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!("TWOFACTOR_TEST_POSTGRES_URL is set but PostgreSQL is unreachable: {e}")
            });
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let url = replace_db_name(admin_url, &name);
        Self {
            admin_url: admin_url.to_owned(),
            name,
            url,
            dropped: false,
        }
    }

    /// Drops the database now (also done on drop, even when the test failed).
    pub async fn drop_db(mut self) {
        drop_database(&self.admin_url, &self.name).await;
        self.dropped = true;
    }
}

async fn drop_database(admin_url: &str, name: &str) {
    use sqlx::Connection as _;
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin_url).await {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Not in an async context: a short-lived runtime on its own thread.
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_database(&admin, &name));
            }
        })
        .join();
    }
}

/// `postgres://u@h:p/db?x` with `db` replaced by `name`.
fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}
