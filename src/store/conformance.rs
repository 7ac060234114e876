//! A conformance suite that any store implementation runs against itself (feature `test-util`).
//!
//! Every contract written in the docs of [`CredentialStore`] and [`EphemeralStore`] is checked,
//! including the races: [`RACE_TASKS`] tasks on a multi-thread runtime, released together by a
//! barrier, advance the same TOTP step, consume the same backup code, take the same challenge,
//! activate the same pending secret or complete the same recovery request, and exactly one must
//! win, in each of [`RACE_ROUNDS`] rounds; the same number of tasks increment one rate-limit
//! counter and none of the increments may be lost.
//!
//! The `_pair` variants take two instances over the same backing storage (two pools over one
//! database: two application servers) and split every race across them, so a store that is
//! atomic only within one process fails.
//!
//! # Using it from a store's tests
//!
//! Each suite function is `async` and panics with a message naming the broken contract. Run it
//! on a **multi-thread** Tokio runtime (a current-thread runtime cannot race, so the suite
//! refuses it):
//!
//! ```
//! use twofactor::store::{conformance, MemoryStore};
//!
//! #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
//! async fn my_store_conforms() {
//!     let store = MemoryStore::new(); // your store, connected to a test database
//!     conformance::credential_store(store.clone()).await;
//!     conformance::ephemeral_store(store).await;
//! }
//!
//! #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
//! async fn two_instances_agree() {
//!     // Two instances sharing one backing storage, e.g. two pools over one database.
//!     let a = MemoryStore::new();
//!     let b = a.clone();
//!     conformance::credential_store_pair(a.clone(), b.clone()).await;
//!     conformance::ephemeral_store_pair(a, b).await;
//! }
//! # fn main() {}
//! ```
//!
//! The suite makes its own user ids, challenge hashes and limiter keys with random suffixes
//! (`tf-conformance-<check>-<hex>`), so several suites can run at once against one shared
//! database and leftovers from an aborted run do not disturb the next one. It never deletes
//! anything it did not create. Times are real Unix times around now (read once per run), so a
//! store that hands expiry to its backend (Redis `EXPIREAT`, a TTL index) keeps challenges and
//! limiter states for the duration of the run; challenges are put with expiries a few minutes
//! ahead and limiter states with `expire_at` an hour ahead.

#![allow(clippy::panic)]

use std::future::Future;
use std::sync::Arc;

use super::{
    BackupCodeHash, ChallengeHash, ChallengeRecord, CredentialRecord, CredentialStore,
    EphemeralStore, LimiterState, RecoveryRecord,
};
use crate::{Algorithm, Clock, SystemClock};

/// Awaits a store call and panics, naming the call, if it returned an error.
macro_rules! call {
    ($e:expr) => {
        ok(stringify!($e), $e.await)
    };
}

/// How many tasks take part in each race.
pub const RACE_TASKS: usize = 32;

/// How many times each race is repeated.
pub const RACE_ROUNDS: u64 = 20;

/// Runs every [`CredentialStore`] contract check and race against `store`.
///
/// # Panics
///
/// When the store breaks a contract or returns an error, with a message naming the check; also
/// when not called on a multi-thread Tokio runtime.
pub async fn credential_store<S>(store: S)
where
    S: CredentialStore + Clone + 'static,
{
    require_multi_thread();
    let base = SystemClock.now();
    pending_and_activate(&store, base).await;
    advance_step(&store, base).await;
    rewrite_secret(&store, base).await;
    delete_credential(&store, base).await;
    backup_codes(&store, base).await;
    replace_backup_codes(&store, base).await;
    recovery(&store, base).await;
    unusual_user_ids(&store, base).await;
    credential_races(&store, &store, base).await;
}

/// Runs every [`EphemeralStore`] contract check and race against `store`.
///
/// # Panics
///
/// When the store breaks a contract or returns an error, with a message naming the check; also
/// when not called on a multi-thread Tokio runtime.
pub async fn ephemeral_store<S>(store: S)
where
    S: EphemeralStore + Clone + 'static,
{
    require_multi_thread();
    let base = SystemClock.now();
    challenges(&store, base).await;
    challenge_expiry(&store, base).await;
    limiter(&store, base).await;
    ephemeral_races(&store, &store, base).await;
}

/// Checks that two instances over the same backing storage (`a` and `b`, e.g. two pools over
/// one database) see each other's writes, then runs every [`CredentialStore`] race with the
/// tasks split between them: exactly one winner across both.
///
/// Run [`credential_store`] too; this one does not repeat the single-instance checks.
///
/// # Panics
///
/// As [`credential_store`].
pub async fn credential_store_pair<S>(a: S, b: S)
where
    S: CredentialStore + Clone + 'static,
{
    require_multi_thread();
    let base = SystemClock.now();
    let user = unique("pair-credential");
    let secret = random::<24>();
    let record = pending_record(&secret, base);
    assert!(
        call!(a.put_pending(&user, &record)),
        "pair: put_pending via a"
    );
    assert_eq!(
        call!(b.get_credential(&user)),
        Some(record.clone()),
        "pair: a pending credential written via a must be visible via b"
    );
    let codes = random_codes(3);
    assert!(
        call!(b.activate(&user, &secret, 100, 0, &codes)),
        "pair: activate via b of a secret put via a"
    );
    assert!(
        !call!(a.put_pending(&user, &record)),
        "pair: put_pending via a must refuse once b activated"
    );
    assert!(call!(a.advance_step(&user, 101, 1)), "pair: advance via a");
    assert!(
        !call!(b.advance_step(&user, 101, 1)),
        "pair: step 101 accepted via a must be refused via b"
    );
    assert_eq!(
        call!(a.consume_backup_code(&user, &codes[0])),
        Some(2),
        "pair: consume via a"
    );
    assert_eq!(
        call!(b.consume_backup_code(&user, &codes[0])),
        None,
        "pair: a backup code consumed via a must be gone via b"
    );
    assert!(call!(b.delete_credential(&user)), "pair: delete via b");
    assert_eq!(
        call!(a.get_credential(&user)),
        None,
        "pair: a credential deleted via b must be gone via a"
    );
    credential_races(&a, &b, base).await;
}

/// Checks that two instances over the same backing storage see each other's challenges and
/// limiter states, then runs every [`EphemeralStore`] race with the tasks split between them.
///
/// Run [`ephemeral_store`] too; this one does not repeat the single-instance checks.
///
/// # Panics
///
/// As [`ephemeral_store`].
pub async fn ephemeral_store_pair<S>(a: S, b: S)
where
    S: EphemeralStore + Clone + 'static,
{
    require_multi_thread();
    let base = SystemClock.now();
    let hash = random::<32>();
    let record = challenge_record("pair-challenge", base + 300);
    call!(a.put_challenge(&hash, &record));
    assert_eq!(
        call!(b.get_challenge(&hash, base)),
        Some(record.clone()),
        "pair: a challenge put via a must be visible via b"
    );
    assert_eq!(
        call!(b.take_challenge(&hash, base)),
        Some(record),
        "pair: take via b"
    );
    assert_eq!(
        call!(a.take_challenge(&hash, base)),
        None,
        "pair: a challenge taken via b must be gone via a"
    );
    let key = unique("pair-limiter");
    call!(a.update_limiter(&key, base + 3600, increment));
    let seen = call!(b.update_limiter(&key, base + 3600, increment));
    assert_eq!(
        seen.attempts, 2,
        "pair: an update via b must start from the state written via a"
    );
    ephemeral_races(&a, &b, base).await;
}

fn ok<T, E: std::error::Error>(what: &str, result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("conformance: `{what}` returned an error: {e} ({e:?})"),
    }
}

fn require_multi_thread() {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread => {}
        _ => panic!(
            "conformance: run the suite on a multi-thread Tokio runtime, e.g. \
             #[tokio::test(flavor = \"multi_thread\", worker_threads = 4)]: \
             a current-thread runtime cannot exercise the races"
        ),
    }
}

fn random<const N: usize>() -> [u8; N] {
    fn fill<R: rand::CryptoRng + ?Sized>(rng: &mut R, buf: &mut [u8]) {
        rng.fill_bytes(buf);
    }
    let mut buf = [0; N];
    fill(&mut crate::rng::os_rng(), &mut buf);
    buf
}

/// A fresh id for one check of one run.
fn unique(check: &str) -> String {
    format!(
        "tf-conformance-{check}-{}",
        data_encoding::HEXLOWER.encode(&random::<8>())
    )
}

fn random_codes(n: usize) -> Vec<BackupCodeHash> {
    (0..n).map(|_| random::<32>()).collect()
}

fn pending_record(secret: &[u8], created_at: u64) -> CredentialRecord {
    CredentialRecord {
        encrypted_secret: secret.to_vec(),
        algorithm: Algorithm::Sha1,
        digits: 6,
        period: 30,
        enabled: false,
        last_step: None,
        drift: 0,
        created_at,
    }
}

fn challenge_record(check: &str, expires_at: u64) -> ChallengeRecord {
    ChallengeRecord {
        user_id: unique(check),
        expires_at,
    }
}

fn increment(mut state: LimiterState) -> LimiterState {
    state.attempts += 1;
    state
}

/// Puts a pending credential and activates it; returns its secret.
async fn enabled_user<S: CredentialStore>(
    store: &S,
    user: &str,
    base: u64,
    step: u64,
    codes: &[BackupCodeHash],
) -> Vec<u8> {
    let secret = random::<32>().to_vec();
    assert!(
        call!(store.put_pending(user, &pending_record(&secret, base))),
        "put_pending for a new user must succeed"
    );
    assert!(
        call!(store.activate(user, &secret, step, 0, codes)),
        "activate with the pending secret must succeed"
    );
    secret
}

async fn pending_and_activate<S: CredentialStore>(store: &S, base: u64) {
    let user = unique("enrol");
    assert_eq!(call!(store.get_credential(&user)), None, "unknown user");
    assert_eq!(
        call!(store.backup_codes_remaining(&user)),
        0,
        "unknown user"
    );

    let first = pending_record(&random::<40>(), base);
    assert!(call!(store.put_pending(&user, &first)), "put_pending");
    assert_eq!(
        call!(store.get_credential(&user)),
        Some(first.clone()),
        "get_credential must return the pending record as put"
    );

    // Every field round-trips, including binary secrets with zero bytes and a negative drift.
    let mut secret = random::<64>().to_vec();
    secret[0] = 0;
    secret[1] = 0xFF;
    let second = CredentialRecord {
        encrypted_secret: secret.clone(),
        algorithm: Algorithm::Sha512,
        digits: 8,
        period: 60,
        enabled: false,
        last_step: Some(base / 60 - 10),
        drift: -3,
        created_at: base + 1,
    };
    assert!(
        call!(store.put_pending(&user, &second)),
        "put_pending must replace a pending credential"
    );
    assert_eq!(
        call!(store.get_credential(&user)),
        Some(second.clone()),
        "put_pending must replace the whole pending record"
    );

    let step = base / 60;
    let codes = random_codes(3);
    assert!(
        !call!(store.activate(&user, &first.encrypted_secret, step, 1, &codes)),
        "activate with a replaced (stale) pending secret must refuse"
    );
    assert_eq!(
        call!(store.get_credential(&user)),
        Some(second.clone()),
        "a refused activate must change nothing"
    );
    assert_eq!(
        call!(store.backup_codes_remaining(&user)),
        0,
        "a refused activate must not store backup codes"
    );

    assert!(
        call!(store.activate(&user, &secret, step, -1, &codes)),
        "activate with the pending secret"
    );
    let active = CredentialRecord {
        enabled: true,
        last_step: Some(step),
        drift: -1,
        ..second.clone()
    };
    assert_eq!(
        call!(store.get_credential(&user)),
        Some(active.clone()),
        "activate must enable the credential and set last_step and drift, nothing else"
    );
    assert_eq!(
        call!(store.backup_codes_remaining(&user)),
        3,
        "activate must store the backup codes"
    );
    assert_eq!(
        call!(store.consume_backup_code(&user, &codes[1])),
        Some(2),
        "a backup code stored by activate must be usable"
    );

    assert!(
        !call!(store.activate(&user, &secret, step + 5, 0, &random_codes(5))),
        "activate of an already enabled credential must refuse"
    );
    assert_eq!(
        call!(store.get_credential(&user)),
        Some(active.clone()),
        "a refused activate must not touch an enabled credential"
    );
    assert_eq!(
        call!(store.backup_codes_remaining(&user)),
        2,
        "a refused activate must not replace backup codes"
    );

    let intruder = pending_record(&random::<32>(), base);
    assert!(
        !call!(store.put_pending(&user, &intruder)),
        "put_pending must refuse when the user has an enabled credential"
    );
    assert_eq!(
        call!(store.get_credential(&user)),
        Some(active),
        "a refused put_pending must leave the enabled credential untouched"
    );

    let nobody = unique("enrol-nobody");
    assert!(
        !call!(store.activate(&nobody, &secret, step, 0, &codes)),
        "activate for a user without a pending credential must refuse"
    );
    assert_eq!(
        call!(store.get_credential(&nobody)),
        None,
        "a refused activate must not create a credential"
    );
    assert_eq!(
        call!(store.backup_codes_remaining(&nobody)),
        0,
        "a refused activate must not create backup codes"
    );
}

async fn advance_step<S: CredentialStore>(store: &S, base: u64) {
    let user = unique("advance");
    let step = base / 30;
    assert!(
        !call!(store.advance_step(&user, step, 0)),
        "advance_step for an unknown user must refuse"
    );
    let secret = random::<32>();
    assert!(call!(
        store.put_pending(&user, &pending_record(&secret, base))
    ));
    assert!(
        !call!(store.advance_step(&user, step, 0)),
        "advance_step must refuse while the credential is pending"
    );
    assert_eq!(
        call!(store.get_credential(&user)).and_then(|c| c.last_step),
        None,
        "a refused advance_step must not set last_step"
    );
    assert!(call!(store.activate(&user, &secret, step, 0, &[])));

    let expect = |last: u64, drift: i64| (Some(last), drift);
    let state = || async {
        let c = call!(store.get_credential(&user));
        c.map_or((None, i64::MIN), |c| (c.last_step, c.drift))
    };
    assert!(
        !call!(store.advance_step(&user, step, 4)),
        "advance_step to the step accepted at activation must refuse (replay)"
    );
    assert!(
        !call!(store.advance_step(&user, step - 1, 4)),
        "advance_step to an earlier step must refuse"
    );
    assert_eq!(state().await, expect(step, 0), "refusals change nothing");
    assert!(
        call!(store.advance_step(&user, step + 1, 1)),
        "advance_step to a later step"
    );
    assert_eq!(
        state().await,
        expect(step + 1, 1),
        "advance_step must set last_step and drift"
    );
    assert!(
        !call!(store.advance_step(&user, step + 1, 5)),
        "advance_step to the same step twice must refuse the second"
    );
    assert_eq!(
        state().await,
        expect(step + 1, 1),
        "a refused advance_step must not change the drift"
    );
    assert!(
        call!(store.advance_step(&user, step + 5, -2)),
        "advance_step may skip steps"
    );
    assert!(
        !call!(store.advance_step(&user, step + 3, 0)),
        "advance_step to a step between accepted ones must refuse"
    );
    assert_eq!(state().await, expect(step + 5, -2), "final state");
}

async fn rewrite_secret<S: CredentialStore>(store: &S, base: u64) {
    let user = unique("rewrite");
    let new = random::<48>();
    assert!(
        !call!(store.rewrite_secret(&user, &new, &new)),
        "rewrite_secret for an unknown user must refuse"
    );
    let old = enabled_user(store, &user, base, base / 30, &[]).await;
    let before = call!(store.get_credential(&user));
    assert!(
        !call!(store.rewrite_secret(&user, &random::<32>(), &new)),
        "rewrite_secret with a wrong old secret must refuse"
    );
    assert_eq!(
        call!(store.get_credential(&user)),
        before,
        "a refused rewrite_secret must change nothing"
    );
    assert!(
        call!(store.rewrite_secret(&user, &old, &new)),
        "rewrite_secret with the current secret"
    );
    let after = before.map(|c| CredentialRecord {
        encrypted_secret: new.to_vec(),
        ..c
    });
    assert_eq!(
        call!(store.get_credential(&user)),
        after,
        "rewrite_secret must replace the secret and nothing else"
    );
    assert!(
        !call!(store.rewrite_secret(&user, &old, &random::<32>())),
        "rewrite_secret from a secret already rewritten must refuse (lost race)"
    );
    assert_eq!(call!(store.get_credential(&user)), after, "unchanged");
}

async fn delete_credential<S: CredentialStore>(store: &S, base: u64) {
    let user = unique("delete");
    assert!(
        !call!(store.delete_credential(&user)),
        "delete_credential of an unknown user must return false"
    );
    let codes = random_codes(4);
    enabled_user(store, &user, base, base / 30, &codes).await;
    call!(store.put_recovery(
        &user,
        &RecoveryRecord {
            requested_at: base,
            not_before: base + 3600,
            approved: false,
        }
    ));
    assert!(
        call!(store.delete_credential(&user)),
        "delete_credential must return true when a credential existed"
    );
    assert_eq!(call!(store.get_credential(&user)), None, "credential gone");
    assert_eq!(
        call!(store.backup_codes_remaining(&user)),
        0,
        "delete_credential must remove the backup codes"
    );
    assert_eq!(
        call!(store.consume_backup_code(&user, &codes[0])),
        None,
        "a backup code must not survive delete_credential"
    );
    assert_eq!(
        call!(store.get_recovery(&user)),
        None,
        "delete_credential must remove the recovery request"
    );
    assert!(
        !call!(store.delete_credential(&user)),
        "a second delete_credential must return false"
    );

    // Enrolling again starts clean: the old codes do not come back.
    let fresh = random_codes(2);
    enabled_user(store, &user, base, base / 30, &fresh).await;
    assert_eq!(
        call!(store.backup_codes_remaining(&user)),
        2,
        "re-enrolment after delete must have only the new codes"
    );
    assert_eq!(call!(store.consume_backup_code(&user, &codes[1])), None);

    let pending = unique("delete-pending");
    assert!(call!(
        store.put_pending(&pending, &pending_record(&random::<32>(), base))
    ));
    assert!(
        call!(store.delete_credential(&pending)),
        "delete_credential must remove a pending credential too"
    );
    assert_eq!(call!(store.get_credential(&pending)), None);
}

async fn backup_codes<S: CredentialStore>(store: &S, base: u64) {
    let user = unique("backup");
    let codes = random_codes(5);
    assert_eq!(
        call!(store.consume_backup_code(&user, &codes[0])),
        None,
        "consume_backup_code for an unknown user"
    );
    enabled_user(store, &user, base, base / 30, &codes).await;
    assert_eq!(
        call!(store.consume_backup_code(&user, &codes[2])),
        Some(4),
        "consume_backup_code must return how many remain"
    );
    assert_eq!(
        call!(store.consume_backup_code(&user, &codes[2])),
        None,
        "a backup code must be single use"
    );
    assert_eq!(
        call!(store.consume_backup_code(&user, &random::<32>())),
        None,
        "an unknown backup code"
    );
    assert_eq!(call!(store.backup_codes_remaining(&user)), 4);
    for (expected, code) in [3, 2, 1, 0].into_iter().zip([0, 1, 3, 4]) {
        assert_eq!(
            call!(store.consume_backup_code(&user, &codes[code])),
            Some(expected),
            "consume_backup_code must count down to zero"
        );
    }
    assert_eq!(call!(store.backup_codes_remaining(&user)), 0);
    assert_eq!(call!(store.consume_backup_code(&user, &codes[0])), None);

    // Codes belong to one user: the same hash under another user is a different code.
    let other = unique("backup-other");
    let shared = random_codes(2);
    enabled_user(store, &other, base, base / 30, &shared).await;
    assert!(call!(store.replace_backup_codes(&user, &shared)));
    assert_eq!(call!(store.consume_backup_code(&user, &shared[0])), Some(1));
    assert_eq!(
        call!(store.consume_backup_code(&other, &shared[0])),
        Some(1),
        "consuming a code of one user must not consume another user's code"
    );
    assert_eq!(
        call!(store.consume_backup_code(&other, &codes[0])),
        None,
        "another user's (used) code"
    );
}

async fn replace_backup_codes<S: CredentialStore>(store: &S, base: u64) {
    let nobody = unique("replace-nobody");
    assert!(
        !call!(store.replace_backup_codes(&nobody, &random_codes(3))),
        "replace_backup_codes for an unknown user must refuse"
    );
    assert_eq!(call!(store.backup_codes_remaining(&nobody)), 0);

    let pending = unique("replace-pending");
    assert!(call!(
        store.put_pending(&pending, &pending_record(&random::<32>(), base))
    ));
    let codes = random_codes(3);
    assert!(
        !call!(store.replace_backup_codes(&pending, &codes)),
        "replace_backup_codes must refuse while the credential is pending"
    );
    assert_eq!(call!(store.backup_codes_remaining(&pending)), 0);
    assert_eq!(call!(store.consume_backup_code(&pending, &codes[0])), None);

    let user = unique("replace");
    let old = random_codes(2);
    enabled_user(store, &user, base, base / 30, &old).await;
    let new = random_codes(3);
    assert!(
        call!(store.replace_backup_codes(&user, &new)),
        "replace_backup_codes for an enabled credential"
    );
    assert_eq!(call!(store.backup_codes_remaining(&user)), 3);
    assert_eq!(
        call!(store.consume_backup_code(&user, &old[0])),
        None,
        "replace_backup_codes must void the old codes"
    );
    assert_eq!(
        call!(store.consume_backup_code(&user, &new[1])),
        Some(2),
        "the new codes must be usable"
    );
    assert!(
        call!(store.replace_backup_codes(&user, &[])),
        "replace_backup_codes with an empty set"
    );
    assert_eq!(call!(store.backup_codes_remaining(&user)), 0);
    assert_eq!(call!(store.consume_backup_code(&user, &new[0])), None);
}

async fn recovery<S: CredentialStore>(store: &S, base: u64) {
    let nobody = unique("recovery-nobody");
    assert_eq!(call!(store.get_recovery(&nobody)), None);
    assert!(!call!(store.approve_recovery(&nobody)), "approve: none");
    assert!(!call!(store.cancel_recovery(&nobody)), "cancel: none");
    assert!(
        !call!(store.complete_recovery(&nobody, base + 10_000_000)),
        "complete_recovery without a request must refuse"
    );

    let wait = 72 * 3600;
    // Waiting period.
    let user = unique("recovery-wait");
    enabled_user(store, &user, base, base / 30, &random_codes(3)).await;
    let first = RecoveryRecord {
        requested_at: base - 10,
        not_before: base + 10,
        approved: false,
    };
    call!(store.put_recovery(&user, &first));
    assert_eq!(call!(store.get_recovery(&user)), Some(first));
    let request = RecoveryRecord {
        requested_at: base,
        not_before: base + wait,
        approved: false,
    };
    call!(store.put_recovery(&user, &request));
    assert_eq!(
        call!(store.get_recovery(&user)),
        Some(request.clone()),
        "put_recovery must replace an earlier request"
    );
    for now in [base, base + 10, base + wait - 1] {
        assert!(
            !call!(store.complete_recovery(&user, now)),
            "complete_recovery must refuse before not_before unless approved"
        );
    }
    assert!(
        call!(store.get_credential(&user)).is_some(),
        "a refused complete_recovery must keep the credential"
    );
    assert_eq!(call!(store.backup_codes_remaining(&user)), 3);
    assert_eq!(call!(store.get_recovery(&user)), Some(request));
    assert!(
        call!(store.complete_recovery(&user, base + wait)),
        "complete_recovery at not_before"
    );
    assert_eq!(
        call!(store.get_credential(&user)),
        None,
        "complete_recovery must remove the credential"
    );
    assert_eq!(
        call!(store.backup_codes_remaining(&user)),
        0,
        "complete_recovery must remove the backup codes"
    );
    assert_eq!(
        call!(store.get_recovery(&user)),
        None,
        "complete_recovery must remove the request"
    );
    assert!(
        !call!(store.complete_recovery(&user, base + wait)),
        "a completed request must not complete twice"
    );

    // Operator approval.
    let user = unique("recovery-approve");
    enabled_user(store, &user, base, base / 30, &random_codes(1)).await;
    call!(store.put_recovery(
        &user,
        &RecoveryRecord {
            requested_at: base,
            not_before: base + wait,
            approved: false,
        }
    ));
    assert!(call!(store.approve_recovery(&user)), "approve_recovery");
    assert_eq!(
        call!(store.get_recovery(&user)).map(|r| (r.approved, r.not_before)),
        Some((true, base + wait)),
        "approve_recovery must set approved and nothing else"
    );
    assert!(
        call!(store.complete_recovery(&user, base)),
        "an approved request must complete at once"
    );
    assert_eq!(call!(store.get_credential(&user)), None);
    assert_eq!(call!(store.backup_codes_remaining(&user)), 0);

    // Cancelled by the owner.
    let user = unique("recovery-cancel");
    enabled_user(store, &user, base, base / 30, &random_codes(2)).await;
    call!(store.put_recovery(
        &user,
        &RecoveryRecord {
            requested_at: base,
            not_before: base + wait,
            approved: false,
        }
    ));
    assert!(call!(store.cancel_recovery(&user)), "cancel_recovery");
    assert_eq!(call!(store.get_recovery(&user)), None, "cancelled");
    assert!(
        !call!(store.complete_recovery(&user, base + 10 * wait)),
        "a cancelled request must never complete"
    );
    assert!(
        !call!(store.approve_recovery(&user)),
        "approve after cancel"
    );
    assert!(!call!(store.cancel_recovery(&user)), "cancel twice");
    assert!(
        call!(store.get_credential(&user)).is_some_and(|c| c.enabled),
        "cancelling must keep the credential"
    );
    assert_eq!(call!(store.backup_codes_remaining(&user)), 2);
}

/// User ids are opaque strings: quotes, non-ASCII and separators must not be interpreted.
async fn unusual_user_ids<S: CredentialStore>(store: &S, base: u64) {
    let plain = unique("odd");
    let odd = format!("{plain}'; DROP TABLE x;--\"ü:*?\\%_");
    let codes = random_codes(2);
    enabled_user(store, &odd, base, base / 30, &codes).await;
    assert_eq!(
        call!(store.get_credential(&plain)),
        None,
        "user ids must be matched exactly"
    );
    assert_eq!(call!(store.consume_backup_code(&plain, &codes[0])), None);
    assert_eq!(call!(store.consume_backup_code(&odd, &codes[0])), Some(1));
    assert!(call!(store.delete_credential(&odd)));
}

async fn challenges<S: EphemeralStore>(store: &S, base: u64) {
    let hash = random::<32>();
    assert_eq!(call!(store.get_challenge(&hash, base)), None, "unknown");
    assert_eq!(call!(store.take_challenge(&hash, base)), None, "unknown");

    let record = challenge_record("challenge", base + 300);
    call!(store.put_challenge(&hash, &record));
    let other_hash = random::<32>();
    let other = challenge_record("challenge-other", base + 300);
    call!(store.put_challenge(&other_hash, &other));

    for now in [base, base + 299, base] {
        assert_eq!(
            call!(store.get_challenge(&hash, now)),
            Some(record.clone()),
            "get_challenge before expiry must return it and must not consume it"
        );
    }
    assert_eq!(
        call!(store.take_challenge(&hash, base + 1)),
        Some(record),
        "take_challenge before expiry"
    );
    assert_eq!(
        call!(store.take_challenge(&hash, base + 1)),
        None,
        "take_challenge must be single use"
    );
    assert_eq!(
        call!(store.get_challenge(&hash, base + 1)),
        None,
        "a taken challenge is gone"
    );
    assert_eq!(
        call!(store.get_challenge(&other_hash, base)),
        Some(other.clone()),
        "taking one challenge must not touch another"
    );
    assert_eq!(call!(store.take_challenge(&other_hash, base)), Some(other));

    let zeros = [0; 32];
    let mut zeros_too = zeros;
    zeros_too[31] = 1;
    let record = challenge_record("challenge-bytes", base + 300);
    call!(store.put_challenge(&zeros_too, &record));
    assert_eq!(
        call!(store.get_challenge(&zeros, base)),
        None,
        "challenge hashes must be compared as whole binary values"
    );
    assert_eq!(call!(store.take_challenge(&zeros_too, base)), Some(record));
}

async fn challenge_expiry<S: EphemeralStore>(store: &S, base: u64) {
    let expires_at = base + 300;
    let hash = random::<32>();
    call!(store.put_challenge(&hash, &challenge_record("expiry", expires_at)));
    assert_eq!(
        call!(store.get_challenge(&hash, expires_at)),
        None,
        "get_challenge at expires_at must return None (now >= expires_at is expired)"
    );
    assert_eq!(
        call!(store.take_challenge(&hash, expires_at + 1)),
        None,
        "take_challenge after expiry must return None"
    );

    let hash = random::<32>();
    call!(store.put_challenge(&hash, &challenge_record("expiry-take", expires_at)));
    assert_eq!(
        call!(store.take_challenge(&hash, expires_at)),
        None,
        "take_challenge at expires_at must return None"
    );

    let hash = random::<32>();
    call!(store.put_challenge(&hash, &challenge_record("expiry-past", base - 1)));
    assert_eq!(
        call!(store.get_challenge(&hash, base)),
        None,
        "a challenge put already expired must not be returned"
    );
    assert_eq!(call!(store.take_challenge(&hash, base)), None);
}

async fn limiter<S: EphemeralStore>(store: &S, base: u64) {
    let key = unique("limiter");
    let other = unique("limiter-other");
    let expire_at = base + 3600;
    assert_eq!(
        call!(store.get_limiter(&key)),
        LimiterState::default(),
        "get_limiter of an unknown key must return the default state"
    );
    let first = call!(store.update_limiter(&key, expire_at, |state| LimiterState {
        window_start: base,
        attempts: state.attempts + 1,
        consecutive_failures: state.consecutive_failures + 3,
        locked_until: 0,
    }));
    let expected = LimiterState {
        window_start: base,
        attempts: 1,
        consecutive_failures: 3,
        locked_until: 0,
    };
    assert_eq!(
        first, expected,
        "update_limiter must start from the default state and return the result"
    );
    assert_eq!(call!(store.get_limiter(&key)), expected, "stored");
    let second = call!(store.update_limiter(&key, expire_at, |state| LimiterState {
        attempts: state.attempts * 10 + 7,
        consecutive_failures: state.consecutive_failures + 1,
        locked_until: state.window_start + 600,
        ..state
    }));
    let expected = LimiterState {
        window_start: base,
        attempts: 17,
        consecutive_failures: 4,
        locked_until: base + 600,
    };
    assert_eq!(
        second, expected,
        "update_limiter must read the stored state (read-modify-write)"
    );
    assert_eq!(call!(store.get_limiter(&key)), expected);
    assert_eq!(
        call!(store.get_limiter(&other)),
        LimiterState::default(),
        "limiter keys must be isolated"
    );
    call!(store.update_limiter(&other, expire_at, increment));
    assert_eq!(
        call!(store.get_limiter(&key)),
        expected,
        "updating one key must not touch another"
    );
    let reset = call!(store.update_limiter(&key, expire_at, |_| LimiterState::default()));
    assert_eq!(reset, LimiterState::default(), "reset to default");
    assert_eq!(call!(store.get_limiter(&key)), LimiterState::default());
}

/// Starts `RACE_TASKS` tasks, task `i` on `stores[i % 2]`, releases them together, and returns
/// their results in task order.
async fn race<S, T, F, Fut>(stores: [&S; 2], f: F) -> Vec<T>
where
    S: Clone + Send + 'static,
    T: Send + 'static,
    F: Fn(S) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(RACE_TASKS));
    let tasks: Vec<_> = (0..RACE_TASKS)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let work = f(stores[i % 2].clone());
            tokio::spawn(async move {
                barrier.wait().await;
                work.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(RACE_TASKS);
    for task in tasks {
        match task.await {
            Ok(value) => results.push(value),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("conformance: a race task did not finish: {e}"),
        }
    }
    results
}

fn count_true(results: &[bool]) -> usize {
    results.iter().filter(|&&won| won).count()
}

async fn credential_races<S>(a: &S, b: &S, base: u64)
where
    S: CredentialStore + Clone + 'static,
{
    let stores = [a, b];

    // Same TOTP step from every task: exactly one acceptance.
    let user = unique("race-step");
    let first = base / 30;
    enabled_user(a, &user, base, first, &[]).await;
    for round in 1..=RACE_ROUNDS {
        let step = first + round;
        let results = race(stores, |s| {
            let user = user.clone();
            async move { call!(s.advance_step(&user, step, 1)) }
        })
        .await;
        assert_eq!(
            count_true(&results),
            1,
            "advance_step race (round {round}): exactly one of {RACE_TASKS} concurrent calls \
             with the same step may succeed"
        );
        assert_eq!(
            call!(b.get_credential(&user)).and_then(|c| c.last_step),
            Some(step),
            "advance_step race: last_step after the race"
        );
    }

    // Different steps at once: the latest always wins and is what remains.
    let mut last = first + RACE_ROUNDS;
    for round in 1..=RACE_ROUNDS {
        let next = std::sync::atomic::AtomicU64::new(last);
        let results = race(stores, |s| {
            let user = user.clone();
            let step = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            async move { (step, call!(s.advance_step(&user, step, 0))) }
        })
        .await;
        last += RACE_TASKS as u64;
        assert!(
            results.iter().any(|&(step, won)| step == last && won),
            "advance_step race with distinct steps (round {round}): the latest step must be \
             accepted"
        );
        assert_eq!(
            call!(a.get_credential(&user)).and_then(|c| c.last_step),
            Some(last),
            "advance_step race with distinct steps (round {round}): last_step must end at the \
             latest step, never move backwards"
        );
    }

    // Same backup code from every task: exactly one consumption.
    let user = unique("race-backup");
    enabled_user(a, &user, base, first, &[]).await;
    for round in 1..=RACE_ROUNDS {
        let codes = random_codes(8);
        assert!(call!(b.replace_backup_codes(&user, &codes)));
        let code = codes[round as usize % codes.len()];
        let results = race(stores, |s| {
            let user = user.clone();
            async move { call!(s.consume_backup_code(&user, &code)) }
        })
        .await;
        let wins: Vec<_> = results.iter().flatten().collect();
        assert_eq!(
            wins,
            [&7],
            "consume_backup_code race (round {round}): exactly one of {RACE_TASKS} concurrent \
             calls with the same code may succeed, reporting 7 left"
        );
        assert_eq!(call!(a.backup_codes_remaining(&user)), 7);
    }

    // Same pending secret confirmed by every task: exactly one activation.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-activate");
        let secret = random::<32>();
        assert!(call!(a.put_pending(&user, &pending_record(&secret, base))));
        let codes = random_codes(4);
        let results = race(stores, |s| {
            let user = user.clone();
            let codes = codes.clone();
            async move { call!(s.activate(&user, &secret, first, 0, &codes)) }
        })
        .await;
        assert_eq!(
            count_true(&results),
            1,
            "activate race (round {round}): exactly one of {RACE_TASKS} concurrent calls may \
             succeed"
        );
        assert!(call!(b.get_credential(&user)).is_some_and(|c| c.enabled));
        assert_eq!(call!(b.backup_codes_remaining(&user)), 4);
    }

    // Same due recovery request completed by every task: exactly one completion.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-recovery");
        enabled_user(a, &user, base, first, &random_codes(2)).await;
        call!(b.put_recovery(
            &user,
            &RecoveryRecord {
                requested_at: base,
                not_before: base + 3600,
                approved: true,
            }
        ));
        let results = race(stores, |s| {
            let user = user.clone();
            async move { call!(s.complete_recovery(&user, base)) }
        })
        .await;
        assert_eq!(
            count_true(&results),
            1,
            "complete_recovery race (round {round}): exactly one of {RACE_TASKS} concurrent \
             calls may succeed"
        );
        assert_eq!(call!(a.get_credential(&user)), None);
    }
}

async fn ephemeral_races<S>(a: &S, b: &S, base: u64)
where
    S: EphemeralStore + Clone + 'static,
{
    let stores = [a, b];

    // Same challenge taken by every task: exactly one gets it.
    for round in 1..=RACE_ROUNDS {
        let hash: ChallengeHash = random::<32>();
        let record = challenge_record("race-challenge", base + 300);
        call!(a.put_challenge(&hash, &record));
        let results = race(
            stores,
            |s| async move { call!(s.take_challenge(&hash, base)) },
        )
        .await;
        let wins: Vec<_> = results.into_iter().flatten().collect();
        assert_eq!(
            wins,
            [record],
            "take_challenge race (round {round}): exactly one of {RACE_TASKS} concurrent calls \
             may get the challenge"
        );
        assert_eq!(call!(b.get_challenge(&hash, base)), None);
    }

    // Concurrent increments of one counter: none lost, each sees a distinct count.
    for round in 1..=RACE_ROUNDS {
        let key = unique("race-limiter");
        let results = race(stores, |s| {
            let key = key.clone();
            async move { call!(s.update_limiter(&key, base + 3600, increment)).attempts }
        })
        .await;
        let mut seen = results;
        seen.sort_unstable();
        let expected: Vec<u32> = (1..=RACE_TASKS as u32).collect();
        assert_eq!(
            seen, expected,
            "update_limiter race (round {round}): {RACE_TASKS} concurrent increments must be \
             serialised, each returning a distinct count"
        );
        assert_eq!(
            call!(b.get_limiter(&key)).attempts,
            RACE_TASKS as u32,
            "update_limiter race (round {round}): lost update"
        );
    }
}
