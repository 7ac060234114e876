//! Shared by the store tests: the environment switches, unique names, a TCP proxy that can be cut
//! to simulate a dead server, and fixtures for backend-specific tests. The contracts themselves
//! are checked by `twofactor::store::conformance`, the one suite every store runs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use twofactor::Algorithm;
use twofactor::store::{BackupCodeHash, CredentialRecord, CredentialStore, DeviceRecord};

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

/// What `version_2_database` (in the SQLite and PostgreSQL store tests) holds must read back
/// after `migrate()` as one authenticator per user, with its secret, last step (still used),
/// backup codes and device token (`prefix` only labels failures).
pub async fn check_upgraded_from_version_2<S: CredentialStore>(store: &S, prefix: &str) {
    let legacy = CredentialRecord {
        id: "legacy".into(),
        name: "Authenticator app".into(),
        encrypted_secret: b"v2-secret".to_vec(),
        algorithm: Algorithm::Sha1,
        digits: 6,
        period: 30,
        enabled: true,
        last_step: Some(56_666_666),
        drift: 1,
        created_at: 1_700_000_000,
        last_used_at: None,
        replaces: None,
    };
    assert_eq!(
        store.get_credentials("alice").await.unwrap(),
        std::slice::from_ref(&legacy),
        "{prefix}"
    );
    let bob = store.get_credentials("bob").await.unwrap();
    assert_eq!(bob.len(), 1);
    assert_eq!((bob[0].id.as_str(), bob[0].enabled), ("legacy", false));

    // The last accepted step came along: the code used under version 2 stays used.
    assert!(
        !store
            .advance_step(
                "alice",
                "legacy",
                b"v2-secret",
                56_666_666,
                0,
                1_700_000_100
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .advance_step(
                "alice",
                "legacy",
                b"v2-secret",
                56_666_667,
                0,
                1_700_000_100
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_credentials("alice").await.unwrap()[0].last_used_at,
        Some(1_700_000_100)
    );
    // The enabled authenticator blocks a code-less enrolment and keeps its id.
    let mut intruder = legacy.clone();
    intruder.enabled = false;
    assert!(!store.put_pending("alice", &intruder, true).await.unwrap());
    assert!(!store.put_pending("alice", &intruder, false).await.unwrap());
    // Bob's pending credential can still be confirmed.
    assert!(
        store
            .activate("bob", b"v2-pending", 56_666_700, 0, Some(&[hash(3)]), 20)
            .await
            .unwrap()
    );

    assert_eq!(
        store.consume_backup_code("alice", &hash(2)).await.unwrap(),
        Some(1)
    );
    let known = DeviceRecord {
        user_id: "alice".into(),
        created_at: 1_700_000_000,
        expires_at: 1_800_000_000,
        trusted_until: None,
        label: String::new(),
        last_used_at: 1_700_000_000,
    };
    assert_eq!(
        store.list_devices("alice", 1_700_000_050).await.unwrap(),
        [(hash(9), known.clone())]
    );
    assert_eq!(
        store.use_device(&hash(9), 1_700_000_200).await.unwrap(),
        Some(DeviceRecord {
            last_used_at: 1_700_000_200,
            ..known
        })
    );
}
