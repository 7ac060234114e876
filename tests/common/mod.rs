//! Shared by the store tests: the environment switches, unique names, a TCP proxy that can be cut
//! to simulate a dead server, and fixtures for backend-specific tests. The contracts themselves
//! are checked by `twofactor::store::conformance`, the one suite every store runs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use twofactor::Algorithm;
use twofactor::store::{BackupCodeHash, CredentialRecord, CredentialStore};

/// The URL in `var`, or `None` after printing that the test is skipped. Under `CI=true` an
/// unset variable is a failure: CI must really reach the service.
pub fn service_url(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{var} is not set but CI=true: {test} must run against the real service");
            }
            eprintln!("skipped {test}: set {var} to run it");
            None
        }
    }
}

/// `TWOFACTOR_TEST_POSTGRES_URL`, e.g. `postgres://postgres@127.0.0.1:5432/test`.
pub fn postgres_url(test: &str) -> Option<String> {
    service_url("TWOFACTOR_TEST_POSTGRES_URL", test)
}

/// `TWOFACTOR_TEST_REDIS_URL`, e.g. `redis://127.0.0.1:6379`.
pub fn redis_url(test: &str) -> Option<String> {
    service_url("TWOFACTOR_TEST_REDIS_URL", test)
}

/// A name no other test (in this or a parallel process) uses: lower-case letters, digits, `_`.
pub fn unique(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{tag}_{}_{:x}_{}",
        std::process::id(),
        nanos & 0xffff_ffff_ffff,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A TCP proxy to `target` on a free local port. `cut()` closes the listener and every proxied
/// connection, so clients see the server vanish mid-life.
pub struct Proxy {
    pub port: u16,
    tasks: Arc<std::sync::Mutex<JoinSet<()>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks = Arc::new(std::sync::Mutex::new(JoinSet::new()));
        let spawned = Arc::clone(&tasks);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                spawned.lock().unwrap().spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self {
            port,
            tasks,
            accept,
        }
    }

    pub fn cut(&self) {
        self.accept.abort();
        self.tasks.lock().unwrap().abort_all();
    }
}

pub fn hash(n: u8) -> BackupCodeHash {
    let mut h = [0u8; 32];
    h[0] = n;
    h[31] = 0xA5;
    h
}

/// A pending authenticator `first` holding `secret`.
pub fn pending(secret: &[u8]) -> CredentialRecord {
    CredentialRecord {
        id: "first".into(),
        name: "Phone".into(),
        encrypted_secret: secret.to_vec(),
        algorithm: Algorithm::Sha256,
        digits: 8,
        period: 30,
        enabled: false,
        last_step: None,
        drift: 0,
        created_at: 1_700_000_000,
        last_used_at: None,
        replaces: None,
    }
}

/// An enabled authenticator `first` for `user` (secret `secret-v1`, last step 100) with backup
/// codes `hash(1..=codes)`.
pub async fn enrolled<S: CredentialStore>(store: &S, user: &str, codes: u8) {
    assert!(
        store
            .put_pending(user, &pending(b"secret-v1"), true)
            .await
            .unwrap()
    );
    let hashes: Vec<_> = (1..=codes).map(hash).collect();
    assert!(
        store
            .activate(user, b"secret-v1", 100, 0, Some(&hashes), 20)
            .await
            .unwrap()
    );
}
