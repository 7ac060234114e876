//! Shared by the store tests: the environment switches, unique names, a TCP proxy that can be cut
//! to simulate a dead server, and focused checks (contracts and 32-task races) that run against
//! any store through the traits, on one instance or on two instances over one backing store.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use twofactor::Algorithm;
use twofactor::store::{
    BackupCodeHash, ChallengeRecord, CredentialRecord, CredentialStore, DeviceRecord,
    EphemeralStore, LimiterState, RecoveryRecord,
};

/// How many tasks race in every race.
pub const RACERS: usize = 32;

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

pub fn pending(secret: &[u8]) -> CredentialRecord {
    CredentialRecord {
        encrypted_secret: secret.to_vec(),
        algorithm: Algorithm::Sha256,
        digits: 8,
        period: 30,
        enabled: false,
        last_step: None,
        drift: 0,
        created_at: 1_700_000_000,
    }
}

/// An enabled credential for `user` with backup codes `hash(1..=codes)`.
pub async fn enrolled<S: CredentialStore>(store: &S, user: &str, codes: u8) {
    assert!(
        store
            .put_pending(user, &pending(b"secret-v1"))
            .await
            .unwrap()
    );
    let hashes: Vec<_> = (1..=codes).map(hash).collect();
    assert!(
        store
            .activate(user, b"secret-v1", 100, 0, &hashes)
            .await
            .unwrap()
    );
}

/// The credential contract, one call at a time.
pub async fn credential_contract<S: CredentialStore>(s: &S) {
    let u = "alice@example.com";
    assert_eq!(s.get_credential(u).await.unwrap(), None);
    assert!(
        !s.advance_step(u, b"secret-v1", 1, 0).await.unwrap(),
        "no credential"
    );

    // Pending: stored, replaceable, not usable.
    assert!(s.put_pending(u, &pending(b"secret-v0")).await.unwrap());
    assert!(s.put_pending(u, &pending(b"secret-v1")).await.unwrap());
    let got = s.get_credential(u).await.unwrap().unwrap();
    assert_eq!(got, pending(b"secret-v1"));
    assert!(
        !s.advance_step(u, b"secret-v1", 5, 0).await.unwrap(),
        "pending cannot advance"
    );
    assert!(!s.replace_backup_codes(u, &[hash(9)]).await.unwrap());

    // Activation needs the current pending secret.
    assert!(
        !s.activate(u, b"secret-v0", 100, 1, &[hash(1)])
            .await
            .unwrap()
    );
    assert!(
        s.activate(u, b"secret-v1", 100, -1, &[hash(1), hash(2), hash(3)])
            .await
            .unwrap()
    );
    assert!(
        !s.activate(u, b"secret-v1", 100, -1, &[]).await.unwrap(),
        "already active"
    );
    let got = s.get_credential(u).await.unwrap().unwrap();
    assert!(got.enabled);
    assert_eq!((got.last_step, got.drift), (Some(100), -1));
    assert!(
        !s.put_pending(u, &pending(b"evil")).await.unwrap(),
        "enabled is kept"
    );
    assert_eq!(
        s.get_credential(u).await.unwrap().unwrap().encrypted_secret,
        b"secret-v1"
    );

    // Steps only move forward.
    assert!(!s.advance_step(u, b"secret-v1", 100, 0).await.unwrap());
    assert!(!s.advance_step(u, b"secret-v1", 99, 0).await.unwrap());
    assert!(s.advance_step(u, b"secret-v1", 101, 2).await.unwrap());
    let got = s.get_credential(u).await.unwrap().unwrap();
    assert_eq!((got.last_step, got.drift), (Some(101), 2));

    // Lazy key rotation is a compare-and-set.
    assert!(
        !s.rewrite_secret(u, b"secret-v0", b"secret-v2")
            .await
            .unwrap()
    );
    assert!(
        s.rewrite_secret(u, b"secret-v1", b"secret-v2")
            .await
            .unwrap()
    );
    assert_eq!(
        s.get_credential(u).await.unwrap().unwrap().encrypted_secret,
        b"secret-v2"
    );

    // Backup codes: single use, counted, replaced as a whole.
    assert_eq!(s.backup_codes_remaining(u).await.unwrap(), 3);
    assert_eq!(s.consume_backup_code(u, &hash(2)).await.unwrap(), Some(2));
    assert_eq!(s.consume_backup_code(u, &hash(2)).await.unwrap(), None);
    assert_eq!(s.consume_backup_code("bob", &hash(1)).await.unwrap(), None);
    assert!(
        s.replace_backup_codes(u, &[hash(7), hash(8)])
            .await
            .unwrap()
    );
    assert_eq!(
        s.consume_backup_code(u, &hash(1)).await.unwrap(),
        None,
        "old set void"
    );
    assert_eq!(s.consume_backup_code(u, &hash(8)).await.unwrap(), Some(1));
    assert_eq!(s.backup_codes_remaining(u).await.unwrap(), 1);

    // Recovery: delayed, approvable, cancellable.
    let rec = RecoveryRecord {
        requested_at: 1000,
        not_before: 2000,
        approved: false,
        needs_approval: false,
        failures_at_request: 0,
        cancel_hash: hash(99),
    };
    assert_eq!(s.get_recovery(u).await.unwrap(), None);
    assert!(!s.approve_recovery(u).await.unwrap());
    s.put_recovery(u, &rec).await.unwrap();
    assert_eq!(s.get_recovery(u).await.unwrap(), Some(rec.clone()));
    assert!(
        !s.complete_recovery(u, 1999, false).await.unwrap(),
        "too early"
    );
    assert!(s.cancel_recovery(u).await.unwrap());
    assert!(!s.cancel_recovery(u).await.unwrap());
    assert!(
        !s.complete_recovery(u, 5000, false).await.unwrap(),
        "cancelled never completes"
    );
    assert!(s.get_credential(u).await.unwrap().is_some());
    s.put_recovery(u, &rec).await.unwrap();
    assert!(s.approve_recovery(u).await.unwrap());
    assert!(s.get_recovery(u).await.unwrap().unwrap().approved);
    assert!(
        s.complete_recovery(u, 1001, false).await.unwrap(),
        "approved completes at once"
    );
    assert_eq!(s.get_credential(u).await.unwrap(), None);
    assert_eq!(s.backup_codes_remaining(u).await.unwrap(), 0);
    assert_eq!(s.get_recovery(u).await.unwrap(), None);

    // Delete removes everything.
    enrolled(s, u, 4).await;
    s.put_recovery(u, &rec).await.unwrap();
    assert!(s.delete_credential(u).await.unwrap());
    assert!(!s.delete_credential(u).await.unwrap());
    assert_eq!(s.backup_codes_remaining(u).await.unwrap(), 0);
    assert_eq!(s.get_recovery(u).await.unwrap(), None);

    // Values beyond the column are refused, never wrapped; nothing is written.
    enrolled(s, u, 1).await;
    assert!(s.advance_step(u, b"secret-v1", u64::MAX, 0).await.is_err());
    assert_eq!(
        s.get_credential(u).await.unwrap().unwrap().last_step,
        Some(100)
    );
    assert!(
        s.advance_step(u, b"secret-v1", i64::MAX as u64, 0)
            .await
            .unwrap()
    );
    assert!(s.delete_credential(u).await.unwrap());
}

/// The ephemeral contract, one call at a time, at fake times far from the real clock.
pub async fn ephemeral_contract<E: EphemeralStore>(e: &E) {
    for base in [1_000_u64, 1_700_000_000, 4_000_000_000] {
        let h = {
            let mut h = hash(200);
            h[1..9].copy_from_slice(&base.to_be_bytes());
            h
        };
        let rec = ChallengeRecord {
            user_id: "carol:with:colons".into(),
            expires_at: base + 300,
        };
        assert_eq!(e.get_challenge(&h, base).await.unwrap(), None);
        e.put_challenge(&h, &rec).await.unwrap();
        assert_eq!(e.get_challenge(&h, base).await.unwrap(), Some(rec.clone()));
        assert_eq!(
            e.get_challenge(&h, base + 300).await.unwrap(),
            None,
            "expired"
        );
        assert_eq!(
            e.take_challenge(&h, base + 299).await.unwrap(),
            Some(rec.clone())
        );
        assert_eq!(
            e.take_challenge(&h, base + 1).await.unwrap(),
            None,
            "single use"
        );
        e.put_challenge(&h, &rec).await.unwrap();
        assert_eq!(
            e.take_challenge(&h, base + 300).await.unwrap(),
            None,
            "expired"
        );
    }

    let key = "limiter:dave";
    assert_eq!(e.get_limiter(key).await.unwrap(), LimiterState::default());
    let state = e
        .update_limiter(key, 2_000, |s| {
            LimiterState::from_parts(1_000, s.attempts + 1, s.failures + 1, 1_500, 0, 0, 0)
        })
        .await
        .unwrap()
        .after;
    assert_eq!(state.attempts, 1);
    assert_eq!(e.get_limiter(key).await.unwrap(), state);
    assert_eq!(
        e.get_limiter("limiter:other").await.unwrap(),
        LimiterState::default()
    );
}

/// Runs `RACERS` tasks, alternating between `a` and `b`, all released at once; returns their
/// results.
async fn race<S, T, F, Fut>(a: &S, b: &S, op: F) -> Vec<T>
where
    S: Clone + Send + Sync + 'static,
    T: Send + 'static,
    F: Fn(S, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut set = JoinSet::new();
    for i in 0..RACERS {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let barrier = Arc::clone(&barrier);
        let op = op.clone();
        set.spawn(async move {
            barrier.wait().await;
            op(store, i).await
        });
    }
    set.join_all().await
}

/// Every credential race: exactly one winner each time. `a` and `b` may be one store or two
/// instances over one backing store (two application servers).
pub async fn credential_races<S>(a: &S, b: &S)
where
    S: CredentialStore + Clone + 'static,
{
    let u = "race-user";
    enrolled(a, u, 3).await;

    let won = race(a, b, move |s: S, _| async move {
        s.advance_step(u, b"secret-v1", 500, 1).await.unwrap()
    })
    .await;
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "advance_step");

    let won = race(a, b, move |s: S, _| async move {
        s.consume_backup_code(u, &hash(2)).await.unwrap()
    })
    .await;
    let winners: Vec<_> = won.iter().flatten().collect();
    assert_eq!(winners, [&2], "consume_backup_code");

    // Fresh steps from every task: the highest one must end up stored.
    let won = race(a, b, move |s: S, i| async move {
        s.advance_step(u, b"secret-v1", 1000 + i as u64, 0)
            .await
            .unwrap()
    })
    .await;
    assert!(won.iter().any(|w| *w));
    assert_eq!(
        a.get_credential(u).await.unwrap().unwrap().last_step,
        Some(1000 + RACERS as u64 - 1)
    );

    // Replacing backup codes while others consume: never both sets, never a lost code.
    let won = race(a, b, move |s: S, i| async move {
        if i % 4 == 0 {
            let set = [hash(100 + i as u8), hash(101 + i as u8)];
            s.replace_backup_codes(u, &set).await.unwrap();
            None
        } else {
            s.consume_backup_code(u, &hash(1)).await.unwrap()
        }
    })
    .await;
    assert!(won.iter().flatten().count() <= 1);
    assert_eq!(
        b.backup_codes_remaining(u).await.unwrap(),
        2,
        "one whole set"
    );

    // Recovery completes once.
    a.put_recovery(
        u,
        &RecoveryRecord {
            requested_at: 0,
            not_before: 10,
            approved: false,
            needs_approval: false,
            failures_at_request: 0,
            cancel_hash: hash(99),
        },
    )
    .await
    .unwrap();
    let won = race(a, b, move |s: S, _| async move {
        s.complete_recovery(u, 10, false).await.unwrap()
    })
    .await;
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "complete_recovery");
    assert_eq!(a.get_credential(u).await.unwrap(), None);

    // Activation of one pending secret happens once.
    assert!(a.put_pending(u, &pending(b"race-secret")).await.unwrap());
    let won = race(a, b, move |s: S, i| async move {
        let set = [hash(i as u8)];
        s.activate(u, b"race-secret", 7, 0, &set).await.unwrap()
    })
    .await;
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "activate");
    assert_eq!(a.backup_codes_remaining(u).await.unwrap(), 1);
    assert!(a.delete_credential(u).await.unwrap());
}

/// Every ephemeral race: one taker per challenge, no lost limiter update.
pub async fn ephemeral_races<E>(a: &E, b: &E)
where
    E: EphemeralStore + Clone + 'static,
{
    let h = hash(77);
    let rec = ChallengeRecord {
        user_id: "erin".into(),
        expires_at: 1_000_300,
    };
    a.put_challenge(&h, &rec).await.unwrap();
    let won = race(a, b, move |s: E, _| async move {
        s.take_challenge(&h, 1_000_000).await.unwrap()
    })
    .await;
    assert_eq!(won.iter().flatten().count(), 1, "take_challenge");

    let key = "race-limiter";
    let seen = race(a, b, move |s: E, _| async move {
        s.update_limiter(key, 2_000_000, |mut st| {
            st.attempts += 1;
            st
        })
        .await
        .unwrap()
        .after
        .attempts
    })
    .await;
    let mut seen = seen;
    seen.sort_unstable();
    let expected: Vec<u32> = (1..=RACERS as u32).collect();
    assert_eq!(seen, expected, "every update saw the one before it");
    assert_eq!(b.get_limiter(key).await.unwrap().attempts, RACERS as u32);
}

/// Every method of a store whose backend is gone returns `Err` (and does not panic or hang).
pub async fn all_fail<S>(s: &S)
where
    S: CredentialStore + EphemeralStore,
{
    let u = "ghost";
    let h = hash(1);
    let recovery = RecoveryRecord {
        requested_at: 0,
        not_before: 0,
        approved: true,
        needs_approval: false,
        failures_at_request: 0,
        cancel_hash: hash(99),
    };
    assert!(CredentialStore::get_credential(s, u).await.is_err());
    assert!(s.put_pending(u, &pending(b"x")).await.is_err());
    assert!(s.activate(u, b"x", 1, 0, &[h]).await.is_err());
    assert!(s.advance_step(u, b"x", 1, 0).await.is_err());
    assert!(s.rewrite_secret(u, b"x", b"y").await.is_err());
    assert!(s.delete_credential(u).await.is_err());
    assert!(s.consume_backup_code(u, &h).await.is_err());
    assert!(s.replace_backup_codes(u, &[h]).await.is_err());
    assert!(s.backup_codes_remaining(u).await.is_err());
    assert!(s.put_recovery(u, &recovery).await.is_err());
    assert!(s.get_recovery(u).await.is_err());
    assert!(s.approve_recovery(u).await.is_err());
    assert!(s.cancel_recovery(u).await.is_err());
    assert!(s.complete_recovery(u, 1, false).await.is_err());
    assert!(s.cancel_recovery_with_token(u, &h).await.is_err());
    let device = DeviceRecord {
        user_id: u.into(),
        created_at: 0,
        expires_at: 10,
    };
    assert!(s.put_device(&h, &device).await.is_err());
    assert!(s.get_device(&h, 1).await.is_err());
    assert!(s.delete_device(&h).await.is_err());
    assert!(s.delete_devices(u).await.is_err());
    ephemeral_all_fail(s).await;
}

/// Every [`EphemeralStore`] method returns `Err`.
pub async fn ephemeral_all_fail<E: EphemeralStore>(e: &E) {
    let h = hash(1);
    let rec = ChallengeRecord {
        user_id: "ghost".into(),
        expires_at: 10,
    };
    assert!(e.put_challenge(&h, &rec).await.is_err());
    assert!(e.get_challenge(&h, 1).await.is_err());
    assert!(e.take_challenge(&h, 1).await.is_err());
    assert!(e.update_limiter("k", 10, |s| s).await.is_err());
    assert!(e.get_limiter("k").await.is_err());
}
