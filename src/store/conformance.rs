//! A conformance suite that any store implementation runs against itself (feature `test-util`).
//!
//! Every contract written in the docs of [`CredentialStore`] and [`EphemeralStore`] is checked,
//! including the races: [`RACE_TASKS`] tasks on a multi-thread runtime, released together by a
//! barrier, advance the same TOTP step, consume the same backup code, take the same challenge,
//! activate the same pending secret, complete the same recovery request, cancel it with the same
//! token (or cancel and complete it at once) or delete the same device token, and exactly one
//! must win, in each of [`RACE_ROUNDS`] rounds. The same number of tasks update one rate-limit
//! counter: none of the updates may be lost, and each must report the state it started from.
//! Codes checked against a credential that is deleted and re-enrolled meanwhile must not advance
//! the new one, and backup codes replaced while being consumed must leave one whole set.
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
//! The suite makes its own user ids, challenge hashes, device tokens and limiter keys with random
//! suffixes (`tf-conformance-<check>-<hex>`), so several suites can run at once against one
//! shared database and leftovers from an aborted run do not disturb the next one. It never
//! deletes anything it did not create. Times are real Unix times around now (read once per run),
//! so a store that hands expiry to its backend (Redis `EXPIREAT`, a TTL index) keeps challenges
//! and limiter states for the duration of the run; challenges are put with expiries a few
//! minutes ahead and limiter states with `expire_at` an hour ahead. One check puts challenges at
//! times far from now (1970, 2096), taken at once: validity must follow the caller's `now`, so
//! such a store must keep a key a little beyond its expiry by its own clock.

#![allow(clippy::panic)]

use std::future::Future;
use std::sync::Arc;

use super::{
    BackupCodeHash, ChallengeHash, ChallengeRecord, CredentialRecord, CredentialStore,
    DeviceRecord, EphemeralStore, LimiterState, LimiterUpdate, RecoveryRecord, TokenHash,
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

/// The largest time or step every store must hold exactly (a SQL `BIGINT`); beyond it a store
/// may refuse with an error, never wrap.
const BIGINT_MAX: u64 = i64::MAX.unsigned_abs();

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
    advance_step_checks_the_secret(&store, base).await;
    rewrite_secret(&store, base).await;
    delete_credential(&store, base).await;
    backup_codes(&store, base).await;
    replace_backup_codes(&store, base).await;
    recovery(&store, base).await;
    recovery_fields(&store, base).await;
    cancel_recovery_with_token(&store, base).await;
    complete_recovery_conditions(&store, base).await;
    devices(&store, base).await;
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
    times_far_from_the_clock(&store).await;
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
    assert!(
        call!(a.advance_step(&user, &secret, 101, 1)),
        "pair: advance via a"
    );
    assert!(
        !call!(b.advance_step(&user, &secret, 101, 1)),
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
    let request = recovery_record(base, base + 3600, false);
    call!(a.put_recovery(&user, &request));
    assert_eq!(
        call!(b.get_recovery(&user)),
        Some(request.clone()),
        "pair: a recovery request put via a must be visible via b"
    );
    assert!(
        call!(b.cancel_recovery_with_token(&user, &request.cancel_hash)),
        "pair: cancel via b with the token of a request put via a"
    );
    assert_eq!(call!(a.get_recovery(&user)), None, "pair: cancelled via b");
    let device: TokenHash = random::<32>();
    let record = device_record(&user, base + 3600);
    call!(a.put_device(&device, &record));
    assert_eq!(
        call!(b.get_device(&device, base)),
        Some(record),
        "pair: a device token put via a must be visible via b"
    );
    assert_eq!(call!(b.delete_devices(&user)), 1, "pair: delete via b");
    assert_eq!(
        call!(a.get_device(&device, base)),
        None,
        "pair: a device token deleted via b must be gone via a"
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
        (seen.before.attempts, seen.after.attempts),
        (1, 2),
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

/// A recovery request with a random cancel-token hash that needs no approval.
fn recovery_record(requested_at: u64, not_before: u64, approved: bool) -> RecoveryRecord {
    RecoveryRecord {
        requested_at,
        not_before,
        approved,
        needs_approval: false,
        failures_at_request: 0,
        cancel_hash: random::<32>(),
    }
}

fn challenge_record(check: &str, expires_at: u64) -> ChallengeRecord {
    ChallengeRecord {
        user_id: unique(check),
        expires_at,
    }
}

/// One step of the limiter races: every field depends on the state read, so a `before` that is
/// not the state `after` was computed from shows.
fn chain_step(mut state: LimiterState) -> LimiterState {
    state.attempts += 1;
    state.failures = state.failures.wrapping_mul(3).wrapping_add(1);
    state.since_success = state.attempts * 7;
    state.window_start += u64::from(state.attempts);
    state.last_success_at = state.last_success_at * 2 + 3;
    state
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
    let secret = random::<32>();
    assert!(
        !call!(store.advance_step(&user, &secret, step, 0)),
        "advance_step for an unknown user must refuse"
    );
    assert!(call!(
        store.put_pending(&user, &pending_record(&secret, base))
    ));
    assert!(
        !call!(store.advance_step(&user, &secret, step, 0)),
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
        !call!(store.advance_step(&user, &secret, step, 4)),
        "advance_step to the step accepted at activation must refuse (replay)"
    );
    assert!(
        !call!(store.advance_step(&user, &secret, step - 1, 4)),
        "advance_step to an earlier step must refuse"
    );
    assert_eq!(state().await, expect(step, 0), "refusals change nothing");
    assert!(
        call!(store.advance_step(&user, &secret, step + 1, 1)),
        "advance_step to a later step"
    );
    assert_eq!(
        state().await,
        expect(step + 1, 1),
        "advance_step must set last_step and drift"
    );
    assert!(
        !call!(store.advance_step(&user, &secret, step + 1, 5)),
        "advance_step to the same step twice must refuse the second"
    );
    assert_eq!(
        state().await,
        expect(step + 1, 1),
        "a refused advance_step must not change the drift"
    );
    assert!(
        call!(store.advance_step(&user, &secret, step + 5, -2)),
        "advance_step may skip steps"
    );
    assert!(
        !call!(store.advance_step(&user, &secret, step + 3, 0)),
        "advance_step to a step between accepted ones must refuse"
    );
    assert_eq!(state().await, expect(step + 5, -2), "final state");

    // The ends of the range: step i64::MAX (the largest a SQL BIGINT holds) is accepted; beyond
    // it a store may refuse with an error, but must never wrap.
    assert!(
        call!(store.advance_step(&user, &secret, BIGINT_MAX, 3)),
        "advance_step to step i64::MAX must be accepted"
    );
    assert_eq!(state().await, expect(BIGINT_MAX, 3), "step i64::MAX stored");
    match store.advance_step(&user, &secret, u64::MAX, 0).await {
        Ok(true) => assert_eq!(
            state().await,
            expect(u64::MAX, 0),
            "advance_step to u64::MAX must be stored exactly or refused, never wrapped"
        ),
        Ok(false) | Err(_) => assert_eq!(
            state().await,
            expect(BIGINT_MAX, 3),
            "a refused advance_step to u64::MAX must change nothing"
        ),
    }
}

/// `advance_step` names the credential the code was checked against: a credential enrolled
/// since (after a delete, or under another secret) must not be advanced by a code checked
/// against the old one.
async fn advance_step_checks_the_secret<S: CredentialStore>(store: &S, base: u64) {
    let user = unique("advance-secret");
    let step = base / 30;
    let a = enabled_user(store, &user, base, step, &[]).await;
    let mut longer = a.clone();
    longer.push(0);
    for (other, what) in [
        (random::<32>().to_vec(), "another secret"),
        (a[..a.len() - 1].to_vec(), "a prefix of the stored secret"),
        (longer, "the stored secret and one more byte"),
        (Vec::new(), "an empty secret"),
    ] {
        assert!(
            !call!(store.advance_step(&user, &other, step + 1, 0)),
            "advance_step with {what} than the stored one must refuse (expected_secret)"
        );
    }
    assert_eq!(
        call!(store.get_credential(&user)).and_then(|c| c.last_step),
        Some(step),
        "a refused advance_step must not set last_step (expected_secret)"
    );

    // The re-enrolment race, one call at a time: a code was checked against credential A; then
    // A was deleted and B enrolled and confirmed; then the code's step is advanced with A.
    let checked = call!(store.get_credential(&user)).map(|c| c.encrypted_secret);
    assert_eq!(checked.as_deref(), Some(&a[..]));
    assert!(call!(store.delete_credential(&user)));
    let b = random::<32>();
    assert!(call!(store.put_pending(&user, &pending_record(&b, base))));
    assert!(
        !call!(store.advance_step(&user, &a, step + 1, 0)),
        "advance_step with the secret of a deleted credential must refuse while the new one is \
         pending (expected_secret)"
    );
    assert!(call!(store.activate(&user, &b, step + 2, 0, &[])));
    assert!(
        !call!(store.advance_step(&user, &a, step + 3, 0)),
        "advance_step with the secret of a credential deleted and re-enrolled since must refuse \
         (expected_secret): the code was checked against the old credential"
    );
    assert_eq!(
        call!(store.get_credential(&user)).map(|c| (c.last_step, c.drift)),
        Some((Some(step + 2), 0)),
        "a refused advance_step must not touch the re-enrolled credential (expected_secret)"
    );
    assert!(
        call!(store.advance_step(&user, &b, step + 3, 1)),
        "advance_step with the re-enrolled credential's secret"
    );

    // Lazy key rotation: once the secret is rewritten, the old ciphertext no longer names it.
    let rotated = random::<48>();
    assert!(call!(store.rewrite_secret(&user, &b, &rotated)));
    assert!(
        !call!(store.advance_step(&user, &b, step + 4, 0)),
        "advance_step with the secret from before rewrite_secret must refuse (expected_secret)"
    );
    assert!(call!(store.advance_step(&user, &rotated, step + 4, 0)));
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
    call!(store.put_recovery(&user, &recovery_record(base, base + 3600, false)));
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
        !call!(store.complete_recovery(&nobody, base + 10_000_000, false)),
        "complete_recovery without a request must refuse"
    );

    let wait = 72 * 3600;
    // Waiting period.
    let user = unique("recovery-wait");
    enabled_user(store, &user, base, base / 30, &random_codes(3)).await;
    let first = recovery_record(base - 10, base + 10, false);
    call!(store.put_recovery(&user, &first));
    assert_eq!(call!(store.get_recovery(&user)), Some(first));
    let request = recovery_record(base, base + wait, false);
    call!(store.put_recovery(&user, &request));
    assert_eq!(
        call!(store.get_recovery(&user)),
        Some(request.clone()),
        "put_recovery must replace an earlier request"
    );
    for now in [base, base + 10, base + wait - 1] {
        assert!(
            !call!(store.complete_recovery(&user, now, false)),
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
        call!(store.complete_recovery(&user, base + wait, false)),
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
        !call!(store.complete_recovery(&user, base + wait, false)),
        "a completed request must not complete twice"
    );

    // Operator approval.
    let user = unique("recovery-approve");
    enabled_user(store, &user, base, base / 30, &random_codes(1)).await;
    call!(store.put_recovery(&user, &recovery_record(base, base + wait, false)));
    assert!(call!(store.approve_recovery(&user)), "approve_recovery");
    assert_eq!(
        call!(store.get_recovery(&user)).map(|r| (r.approved, r.not_before)),
        Some((true, base + wait)),
        "approve_recovery must set approved and nothing else"
    );
    assert!(
        call!(store.complete_recovery(&user, base, true)),
        "an approved request must complete at once, even when approval is required"
    );
    assert_eq!(call!(store.get_credential(&user)), None);
    assert_eq!(call!(store.backup_codes_remaining(&user)), 0);

    // Cancelled by the owner.
    let user = unique("recovery-cancel");
    enabled_user(store, &user, base, base / 30, &random_codes(2)).await;
    call!(store.put_recovery(&user, &recovery_record(base, base + wait, false)));
    assert!(call!(store.cancel_recovery(&user)), "cancel_recovery");
    assert_eq!(call!(store.get_recovery(&user)), None, "cancelled");
    assert!(
        !call!(store.complete_recovery(&user, base + 10 * wait, false)),
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

/// Every field of a recovery request round-trips, and `approve_recovery` changes only
/// `approved`.
async fn recovery_fields<S: CredentialStore>(store: &S, base: u64) {
    let user = unique("recovery-fields");
    enabled_user(store, &user, base, base / 30, &[]).await;
    let mut cancel_hash = random::<32>();
    cancel_hash[0] = 0;
    cancel_hash[31] = 0xFF;
    let record = RecoveryRecord {
        requested_at: base - 7,
        not_before: BIGINT_MAX,
        approved: false,
        needs_approval: true,
        failures_at_request: u32::MAX,
        cancel_hash,
    };
    call!(store.put_recovery(&user, &record));
    assert_eq!(
        call!(store.get_recovery(&user)),
        Some(record.clone()),
        "get_recovery must return every field as put (needs_approval, failures_at_request, \
         cancel_hash, times up to i64::MAX)"
    );
    assert!(call!(store.approve_recovery(&user)));
    assert_eq!(
        call!(store.get_recovery(&user)),
        Some(RecoveryRecord {
            approved: true,
            ..record.clone()
        }),
        "approve_recovery must set approved and nothing else"
    );
    let replaced = RecoveryRecord {
        requested_at: base,
        not_before: base + 1,
        approved: false,
        needs_approval: false,
        failures_at_request: 3,
        cancel_hash: random::<32>(),
    };
    call!(store.put_recovery(&user, &replaced));
    assert_eq!(
        call!(store.get_recovery(&user)),
        Some(replaced),
        "put_recovery must replace every field of an earlier request"
    );
    assert!(call!(store.cancel_recovery(&user)));
}

/// `cancel_recovery_with_token` deletes the request only for its own token, once.
async fn cancel_recovery_with_token<S: CredentialStore>(store: &S, base: u64) {
    let nobody = unique("recovery-token-nobody");
    assert!(
        !call!(store.cancel_recovery_with_token(&nobody, &random::<32>())),
        "cancel_recovery_with_token without a request must refuse"
    );

    let user = unique("recovery-token");
    enabled_user(store, &user, base, base / 30, &random_codes(2)).await;
    let request = recovery_record(base, base + 3600, false);
    let token = request.cancel_hash;
    call!(store.put_recovery(&user, &request));
    let mut near = token;
    near[31] ^= 1;
    for (hash, what) in [
        (random::<32>(), "a wrong hash"),
        (near, "a hash differing in the last bit"),
        ([0; 32], "an all-zero hash"),
    ] {
        assert!(
            !call!(store.cancel_recovery_with_token(&user, &hash)),
            "cancel_recovery_with_token with {what} must refuse"
        );
    }
    let other = unique("recovery-token-other");
    enabled_user(store, &other, base, base / 30, &[]).await;
    call!(store.put_recovery(&other, &recovery_record(base, base + 3600, false)));
    assert!(
        !call!(store.cancel_recovery_with_token(&other, &token)),
        "a cancel token must not cancel another user's request"
    );
    assert_eq!(
        call!(store.get_recovery(&user)),
        Some(request),
        "a refused cancel_recovery_with_token must change nothing"
    );
    assert!(
        call!(store.cancel_recovery_with_token(&user, &token)),
        "cancel_recovery_with_token with the request's token"
    );
    assert_eq!(call!(store.get_recovery(&user)), None, "cancelled");
    assert!(
        !call!(store.cancel_recovery_with_token(&user, &token)),
        "a cancel token must cancel at most once"
    );
    assert!(
        !call!(store.complete_recovery(&user, BIGINT_MAX, false)),
        "a request cancelled with its token must never complete"
    );
    assert!(
        call!(store.get_credential(&user)).is_some_and(|c| c.enabled),
        "cancelling with the token must keep the credential"
    );
    assert_eq!(call!(store.backup_codes_remaining(&user)), 2);
    assert!(
        call!(store.get_recovery(&other)).is_some(),
        "cancelling one user's request must not touch another's"
    );

    // A replaced request has a new token; the old one is void.
    let first = recovery_record(base, base + 3600, false);
    let second = recovery_record(base + 1, base + 3601, false);
    call!(store.put_recovery(&user, &first));
    call!(store.put_recovery(&user, &second));
    assert!(
        !call!(store.cancel_recovery_with_token(&user, &first.cancel_hash)),
        "the token of a replaced request must not cancel its replacement"
    );
    assert!(call!(
        store.cancel_recovery_with_token(&user, &second.cancel_hash)
    ));
    assert!(call!(store.cancel_recovery(&other)));
}

/// `complete_recovery` completes an approved request at once; otherwise only when approval is
/// not required, the request does not need it, and `not_before <= now`. Every combination.
async fn complete_recovery_conditions<S: CredentialStore>(store: &S, base: u64) {
    let not_before = base + 3600;
    for approved in [false, true] {
        for needs_approval in [false, true] {
            for approval_required in [false, true] {
                for now in [not_before - 1, not_before] {
                    let user = unique("recovery-conditions");
                    enabled_user(store, &user, base, base / 30, &random_codes(2)).await;
                    let device = random::<32>();
                    call!(store.put_device(&device, &device_record(&user, base + 7200)));
                    let request = RecoveryRecord {
                        needs_approval,
                        failures_at_request: 4,
                        ..recovery_record(base, not_before, approved)
                    };
                    call!(store.put_recovery(&user, &request));
                    let due =
                        approved || (!approval_required && !needs_approval && not_before <= now);
                    let case = format!(
                        "approved = {approved}, needs_approval = {needs_approval}, \
                         approval_required = {approval_required}, now {} not_before",
                        if now < not_before { "<" } else { "==" }
                    );
                    assert_eq!(
                        call!(store.complete_recovery(&user, now, approval_required)),
                        due,
                        "complete_recovery with {case}"
                    );
                    if due {
                        assert_eq!(
                            call!(store.get_credential(&user)),
                            None,
                            "complete_recovery ({case}) must remove the credential"
                        );
                        assert_eq!(call!(store.backup_codes_remaining(&user)), 0);
                        assert_eq!(call!(store.get_recovery(&user)), None);
                    } else {
                        assert!(
                            call!(store.get_credential(&user)).is_some_and(|c| c.enabled),
                            "a refused complete_recovery ({case}) must keep the credential"
                        );
                        assert_eq!(call!(store.backup_codes_remaining(&user)), 2);
                        assert_eq!(
                            call!(store.get_recovery(&user)),
                            Some(request),
                            "a refused complete_recovery ({case}) must keep the request"
                        );
                        assert!(call!(store.delete_credential(&user)));
                    }
                    assert!(
                        call!(store.get_device(&device, base)).is_some(),
                        "complete_recovery and delete_credential must leave device tokens to \
                         the caller ({case})"
                    );
                    assert_eq!(call!(store.delete_devices(&user)), 1);
                }
            }
        }
    }
}

fn device_record(user_id: &str, expires_at: u64) -> DeviceRecord {
    DeviceRecord {
        user_id: user_id.to_owned(),
        created_at: expires_at.saturating_sub(86_400),
        expires_at,
    }
}

async fn devices<S: CredentialStore>(store: &S, base: u64) {
    let hash: TokenHash = random::<32>();
    assert_eq!(call!(store.get_device(&hash, base)), None, "unknown device");
    assert!(
        !call!(store.delete_device(&hash)),
        "delete_device of an unknown token must return false"
    );

    let user = unique("device");
    let expires_at = base + 3600;
    let record = DeviceRecord {
        user_id: user.clone(),
        created_at: base - 10,
        expires_at,
    };
    call!(store.put_device(&hash, &record));
    for now in [base - 100, base, expires_at - 1, base] {
        assert_eq!(
            call!(store.get_device(&hash, now)),
            Some(record.clone()),
            "get_device before expiry must return the record as put, and not consume it"
        );
    }
    assert_eq!(
        call!(store.get_device(&hash, expires_at)),
        None,
        "get_device at expires_at must return None (now >= expires_at is expired)"
    );
    assert_eq!(call!(store.get_device(&hash, expires_at + 1)), None);
    let mut near = hash;
    near[31] ^= 1;
    assert_eq!(
        call!(store.get_device(&near, base)),
        None,
        "device hashes must be compared as whole binary values"
    );
    assert!(!call!(store.delete_device(&near)));

    let renewed = DeviceRecord {
        created_at: base,
        expires_at: BIGINT_MAX,
        ..record.clone()
    };
    call!(store.put_device(&hash, &renewed));
    assert_eq!(
        call!(store.get_device(&hash, expires_at)),
        Some(renewed),
        "put_device must replace the record under the hash (expiry up to i64::MAX)"
    );
    assert!(call!(store.delete_device(&hash)), "delete_device");
    assert_eq!(call!(store.get_device(&hash, base)), None, "deleted");
    assert!(
        !call!(store.delete_device(&hash)),
        "a second delete_device must return false"
    );

    // delete_devices removes one user's tokens, all of them, and nobody else's.
    let other = unique("device-other");
    let mine: Vec<TokenHash> = (0..3).map(|_| random::<32>()).collect();
    let theirs: Vec<TokenHash> = (0..2).map(|_| random::<32>()).collect();
    for h in &mine {
        call!(store.put_device(h, &device_record(&user, expires_at)));
    }
    for h in &theirs {
        call!(store.put_device(h, &device_record(&other, expires_at)));
    }
    assert_eq!(
        call!(store.delete_devices(&user)),
        3,
        "delete_devices must return how many tokens the user had"
    );
    for h in &mine {
        assert_eq!(call!(store.get_device(h, base)), None, "delete_devices");
    }
    for h in &theirs {
        assert_eq!(
            call!(store.get_device(h, base)),
            Some(device_record(&other, expires_at)),
            "delete_devices must not touch another user's tokens"
        );
    }
    assert_eq!(call!(store.delete_devices(&user)), 0, "nothing left");
    assert_eq!(call!(store.delete_devices(&unique("device-nobody"))), 0);

    // Devices outlive the credential: the service decides when they go.
    enabled_user(store, &other, base, base / 30, &[]).await;
    assert!(call!(store.delete_credential(&other)));
    assert!(
        call!(store.get_device(&theirs[0], base)).is_some(),
        "delete_credential must leave device tokens to the caller"
    );
    assert_eq!(call!(store.delete_devices(&other)), 2);
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

/// Validity follows the caller's `now`, never a clock of the store's own: challenges at times
/// far in the past and in the future behave like those around now.
async fn times_far_from_the_clock<S: EphemeralStore>(store: &S) {
    for base in [1_000_u64, 1_700_000_000, 4_000_000_000] {
        let hash = random::<32>();
        let record = ChallengeRecord {
            user_id: format!("{}:with:colons", unique("far")),
            expires_at: base + 300,
        };
        assert_eq!(call!(store.get_challenge(&hash, base)), None);
        call!(store.put_challenge(&hash, &record));
        assert_eq!(
            call!(store.get_challenge(&hash, base)),
            Some(record.clone()),
            "a challenge must be valid at the caller's `now` (base {base}), whatever the \
             store's clock says"
        );
        assert_eq!(
            call!(store.take_challenge(&hash, base + 299)),
            Some(record.clone()),
            "take_challenge just before expires_at (base {base})"
        );
        assert_eq!(
            call!(store.take_challenge(&hash, base + 1)),
            None,
            "take_challenge must be single use (base {base})"
        );
        // A store may drop a challenge once it was seen expired, so time only moves forward
        // from here.
        call!(store.put_challenge(&hash, &record));
        assert_eq!(
            call!(store.get_challenge(&hash, base + 300)),
            None,
            "a challenge must be expired at expires_at (base {base})"
        );
        call!(store.put_challenge(&hash, &record));
        assert_eq!(
            call!(store.take_challenge(&hash, base + 300)),
            None,
            "take_challenge at expires_at (base {base})"
        );
    }
}

async fn limiter<S: EphemeralStore>(store: &S, base: u64) {
    let key = unique("limiter");
    let other = unique("limiter-other");
    let expire_at = base + 3600;
    let default = LimiterState::default();
    assert_eq!(
        call!(store.get_limiter(&key)),
        default,
        "get_limiter of an unknown key must return the default state"
    );
    let first = call!(
        store.update_limiter(&key, expire_at, |s| LimiterState::from_parts(
            base,
            s.attempts + 1,
            s.failures + 3,
            0,
            s.forgiven_at + base - 5,
            s.since_success + 2,
            s.last_success_at + base - 60,
        ))
    );
    let expected = LimiterState::from_parts(base, 1, 3, 0, base - 5, 2, base - 60);
    assert_eq!(
        first,
        LimiterUpdate {
            before: default,
            after: expected,
        },
        "update_limiter must start from the default state, return it as `before` and the \
         result as `after`"
    );
    assert_eq!(call!(store.get_limiter(&key)), expected, "stored");
    let second = call!(
        store.update_limiter(&key, expire_at, |s| LimiterState::from_parts(
            s.window_start,
            s.attempts * 10 + 7,
            s.failures + 1,
            s.window_start + 600,
            s.forgiven_at + 1,
            s.since_success * 3,
            s.last_success_at + 60,
        ))
    );
    let expected2 = LimiterState::from_parts(base, 17, 4, base + 600, base - 4, 6, base);
    assert_eq!(
        second,
        LimiterUpdate {
            before: expected,
            after: expected2,
        },
        "update_limiter must read the stored state (read-modify-write) and return it as `before`"
    );
    assert_eq!(call!(store.get_limiter(&key)), expected2);
    assert_eq!(
        call!(store.get_limiter(&other)),
        default,
        "limiter keys must be isolated"
    );
    call!(store.update_limiter(&other, expire_at, increment));
    assert_eq!(
        call!(store.get_limiter(&key)),
        expected2,
        "updating one key must not touch another"
    );
    let odd = format!("{key}:with:colons/and spaces'\"ü");
    assert_eq!(
        call!(store.get_limiter(&odd)),
        default,
        "limiter keys are opaque: separators must not be interpreted"
    );
    call!(store.update_limiter(&odd, expire_at, increment));
    assert_eq!(call!(store.get_limiter(&odd)).attempts, 1);
    assert_eq!(call!(store.get_limiter(&key)), expected2);

    // Every field round-trips, each with its own value (a swapped column shows), at the ends
    // of its range: u32::MAX, and i64::MAX for times.
    for edge in [
        LimiterState::from_parts(1, 2, 3, 4, 5, 6, 7),
        LimiterState::from_parts(
            BIGINT_MAX,
            u32::MAX,
            u32::MAX - 1,
            BIGINT_MAX - 1,
            BIGINT_MAX - 2,
            u32::MAX - 2,
            BIGINT_MAX - 3,
        ),
    ] {
        let update = call!(store.update_limiter(&key, expire_at, move |_| edge));
        assert_eq!(
            update.after, edge,
            "update_limiter must return what it stored"
        );
        assert_eq!(
            call!(store.get_limiter(&key)),
            edge,
            "every limiter field must round-trip exactly"
        );
        assert_eq!(
            call!(store.update_limiter(&key, expire_at, |s| s)),
            LimiterUpdate {
                before: edge,
                after: edge,
            },
            "update_limiter must read back every field exactly"
        );
    }
    // Times beyond i64::MAX: stored exactly, or refused with nothing changed; never wrapped.
    let stored = call!(store.get_limiter(&key));
    let setters: [fn(&mut LimiterState); 4] = [
        |s| s.window_start = u64::MAX,
        |s| s.locked_until = u64::MAX,
        |s| s.forgiven_at = u64::MAX,
        |s| s.last_success_at = u64::MAX,
    ];
    for set in setters {
        let mut huge = stored;
        set(&mut huge);
        match store.update_limiter(&key, expire_at, move |_| huge).await {
            Ok(update) => {
                assert_eq!(update.after, huge, "a time beyond i64::MAX must not wrap");
                assert_eq!(
                    call!(store.get_limiter(&key)),
                    huge,
                    "a time beyond i64::MAX must be stored exactly or refused, never wrapped"
                );
            }
            Err(_) => assert_eq!(
                call!(store.get_limiter(&key)),
                stored,
                "a refused update_limiter must change nothing"
            ),
        }
        call!(store.update_limiter(&key, expire_at, move |_| stored));
    }

    let reset = call!(store.update_limiter(&key, expire_at, |_| LimiterState::default()));
    assert_eq!(reset.after, default, "reset to default");
    assert_eq!(call!(store.get_limiter(&key)), default);
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
    let secret = enabled_user(a, &user, base, first, &[]).await;
    for round in 1..=RACE_ROUNDS {
        let step = first + round;
        let results = race(stores, |s| {
            let user = user.clone();
            let secret = secret.clone();
            async move { call!(s.advance_step(&user, &secret, step, 1)) }
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
            let secret = secret.clone();
            let step = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            async move { (step, call!(s.advance_step(&user, &secret, step, 0))) }
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
        call!(b.put_recovery(&user, &recovery_record(base, base + 3600, true)));
        let results = race(stores, |s| {
            let user = user.clone();
            async move { call!(s.complete_recovery(&user, base, true)) }
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

    // Same unapproved request completed by waiting, by every task: exactly one completion.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-recovery-wait");
        enabled_user(a, &user, base, first, &random_codes(2)).await;
        call!(b.put_recovery(&user, &recovery_record(base - 10, base, false)));
        let results = race(stores, |s| {
            let user = user.clone();
            async move { call!(s.complete_recovery(&user, base, false)) }
        })
        .await;
        assert_eq!(
            count_true(&results),
            1,
            "complete_recovery race after the wait (round {round}): exactly one of \
             {RACE_TASKS} concurrent calls may succeed"
        );
        assert_eq!(call!(a.get_credential(&user)), None);
    }

    // Same cancel token from every task: exactly one cancellation.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-cancel-token");
        enabled_user(a, &user, base, first, &[]).await;
        let request = recovery_record(base, base + 3600, false);
        let token = request.cancel_hash;
        call!(b.put_recovery(&user, &request));
        let results = race(stores, |s| {
            let user = user.clone();
            async move { call!(s.cancel_recovery_with_token(&user, &token)) }
        })
        .await;
        assert_eq!(
            count_true(&results),
            1,
            "cancel_recovery_with_token race (round {round}): exactly one of {RACE_TASKS} \
             concurrent calls with the token may succeed"
        );
        assert_eq!(call!(a.get_recovery(&user)), None);
    }

    // Cancel and complete at once: one or the other, never both.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-cancel-complete");
        enabled_user(a, &user, base, first, &[]).await;
        let request = recovery_record(base, base + 3600, true);
        let token = request.cancel_hash;
        call!(b.put_recovery(&user, &request));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results = race(stores, |s| {
            let user = user.clone();
            let cancel = next
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .is_multiple_of(2);
            async move {
                if cancel {
                    (true, call!(s.cancel_recovery_with_token(&user, &token)))
                } else {
                    (false, call!(s.complete_recovery(&user, base, true)))
                }
            }
        })
        .await;
        let won: Vec<bool> = results
            .iter()
            .filter(|(_, won)| *won)
            .map(|&(cancel, _)| cancel)
            .collect();
        assert_eq!(
            won.len(),
            1,
            "cancel_recovery_with_token against complete_recovery race (round {round}): \
             exactly one may succeed"
        );
        assert_eq!(
            call!(a.get_credential(&user)).is_some(),
            won[0],
            "cancel_recovery_with_token against complete_recovery race (round {round}): the \
             credential must be kept if and only if the cancellation won"
        );
        assert_eq!(call!(b.get_recovery(&user)), None);
        call!(a.delete_credential(&user));
    }

    // Replacing backup codes while others consume: one whole set remains, never a mix.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-replace");
        let old = random_codes(8);
        enabled_user(a, &user, base, first, &old).await;
        let sets: Vec<Vec<BackupCodeHash>> = (0..RACE_TASKS).map(|_| random_codes(2)).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results = race(stores, |s| {
            let user = user.clone();
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let set = sets[i].clone();
            let code = old[0];
            async move {
                if i.is_multiple_of(4) {
                    call!(s.replace_backup_codes(&user, &set));
                    None
                } else {
                    call!(s.consume_backup_code(&user, &code))
                }
            }
        })
        .await;
        assert!(
            results.iter().flatten().count() <= 1,
            "replace_backup_codes race (round {round}): a code may be consumed at most once"
        );
        assert_eq!(
            call!(b.backup_codes_remaining(&user)),
            2,
            "replace_backup_codes race (round {round}): exactly one whole new set must remain"
        );
        let mut remaining = 0;
        for set in sets.iter().step_by(4) {
            let hits = [
                call!(a.consume_backup_code(&user, &set[0])).is_some(),
                call!(a.consume_backup_code(&user, &set[1])).is_some(),
            ];
            assert!(
                hits == [true, true] || hits == [false, false],
                "replace_backup_codes race (round {round}): the remaining codes must be one \
                 whole set"
            );
            remaining += usize::from(hits[0]) * 2;
        }
        assert_eq!(remaining, 2);
    }

    // Device tokens deleted by every task: exactly one deletion.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-device");
        let hash: TokenHash = random::<32>();
        call!(a.put_device(&hash, &device_record(&user, base + 3600)));
        let results = race(stores, |s| async move { call!(s.delete_device(&hash)) }).await;
        assert_eq!(
            count_true(&results),
            1,
            "delete_device race (round {round}): exactly one of {RACE_TASKS} concurrent calls \
             may report the token deleted"
        );
        assert_eq!(call!(b.get_device(&hash, base)), None);
    }

    // The re-enrolment race: a code is checked against credential A while the owner deletes A
    // and enrols and confirms B. A's secret must never advance B.
    for round in 1..=RACE_ROUNDS {
        let user = unique("race-reenrol");
        let old = enabled_user(a, &user, base, first, &[]).await;
        let new = random::<32>().to_vec();
        let activated_at = first + 1_000;
        let next = std::sync::atomic::AtomicU64::new(0);
        race(stores, |s| {
            let user = user.clone();
            let (old, new) = (old.clone(), new.clone());
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                if i == 0 {
                    // The owner: three calls, letting the others run in between.
                    call!(s.delete_credential(&user));
                    tokio::task::yield_now().await;
                    assert!(call!(s.put_pending(&user, &pending_record(&new, base))));
                    tokio::task::yield_now().await;
                    assert!(call!(s.activate(&user, &new, activated_at, 0, &[])));
                } else {
                    // Logins with codes checked against A, at steps past B's first.
                    for k in 0..3 {
                        for _ in 0..=i % 4 {
                            tokio::task::yield_now().await;
                        }
                        let step = activated_at + 3 * i + k + 1;
                        call!(s.advance_step(&user, &old, step, 7));
                    }
                }
            }
        })
        .await;
        assert_eq!(
            call!(b.get_credential(&user)).map(|c| (c.encrypted_secret, c.last_step, c.drift)),
            Some((new.clone(), Some(activated_at), 0)),
            "re-enrolment race (round {round}): advance_step with the old credential's secret \
             must never advance the credential enrolled since (expected_secret)"
        );
        assert!(
            !call!(a.advance_step(&user, &old, activated_at + 10_000, 7)),
            "re-enrolment race (round {round}): after the race, the old secret must still not \
             advance the new credential (expected_secret)"
        );
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

    // Concurrent updates of one counter: none lost, each sees a distinct count, and the
    // (before, after) pairs chain from the default state to the stored one without a gap:
    // `before` is the state the stored `after` was computed from, even after retries.
    for round in 1..=RACE_ROUNDS {
        let key = unique("race-limiter");
        let results = race(stores, |s| {
            let key = key.clone();
            async move { call!(s.update_limiter(&key, base + 3600, chain_step)) }
        })
        .await;
        let mut seen: Vec<u32> = results.iter().map(|u| u.after.attempts).collect();
        seen.sort_unstable();
        let expected: Vec<u32> = (1..=RACE_TASKS as u32).collect();
        assert_eq!(
            seen, expected,
            "update_limiter race (round {round}): {RACE_TASKS} concurrent increments must be \
             serialised, each returning a distinct count"
        );
        let mut updates = results;
        updates.sort_unstable_by_key(|u| u.before.attempts);
        let mut state = LimiterState::default();
        for (i, update) in updates.iter().enumerate() {
            assert_eq!(
                update.before, state,
                "update_limiter race (round {round}): update {i} must report as `before` the \
                 state the previous update stored (before/after chain)"
            );
            assert_eq!(
                update.after,
                chain_step(update.before),
                "update_limiter race (round {round}): `after` must be computed from `before` \
                 (before/after chain)"
            );
            state = update.after;
        }
        assert_eq!(
            call!(b.get_limiter(&key)),
            state,
            "update_limiter race (round {round}): lost update"
        );
    }
}
