//! A conformance suite that any store implementation runs against itself (feature `test-util`).
//!
//! Every contract written in the docs of [`CredentialStore`] and [`EphemeralStore`] is checked,
//! including the races: [`RACE_TASKS`] tasks on a multi-thread runtime, released together by a
//! barrier, advance the same TOTP step, consume the same backup code, take the same challenge,
//! activate the same pending secret, complete the same recovery request, cancel it with the same
//! token (or cancel and complete it at once), delete the same device token, take the same
//! scheduled change, put the same change id or use the same notice token, and exactly one must
//! win, in each of [`RACE_ROUNDS`] rounds. A cancel that spares approved requests racing the
//! operator's approvals must never delete a request an approval reported approved. The same number of tasks update one rate-limit
//! counter: none of the updates may be lost, and each must report the state it started from.
//! Codes checked against a credential that is deleted and re-enrolled meanwhile must not advance
//! the new one, and backup codes replaced while being consumed must leave one whole set.
//!
//! The `_pair` variants take two instances over the same backing storage (two pools over one
//! database: two application servers) and split every race across them, so a store that is
//! atomic only within one process fails.
//!
//! [`credential_store_unreachable`] and [`ephemeral_store_unreachable`] take a store whose
//! backing storage is gone (server down, connection cut, tables missing) and check that every
//! method reports an error instead of an answer, so the service fails closed.
//!
//! The checks live by contract in `credential.rs` (enrolment, steps, backup codes),
//! `authenticators.rs` (several per user, replacing one, removing, the limit, and their races:
//! two confirmations of one pending authenticator, removals of the last two, a removal racing
//! a login, a trusted device's uses racing its revocation), `recovery.rs`, `changes.rs`
//! (scheduled changes, notice tokens, the cancel that spares an approved request, what the
//! deletions remove, and their races), `devices.rs`, `ephemeral.rs` (challenges, limiter
//! states), `users.rs` (deleting everything of one user and nothing of another) and
//! `races.rs`.
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

use super::{
    BackupCodeHash, ChallengeRecord, ChangeKind, CredentialRecord, CredentialStore, DeviceRecord,
    EphemeralStore, LimiterState, RecoveryRecord, ScheduledChangeRecord, TokenHash,
};
use crate::{Algorithm, Clock, SystemClock};

/// Awaits a store call and panics, naming the call, if it returned an error.
macro_rules! call {
    ($e:expr) => {
        $crate::store::conformance::ok(stringify!($e), $e.await)
    };
}

mod authenticators;
mod changes;
mod credential;
mod devices;
mod ephemeral;
mod races;
mod recovery;
mod users;

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
    credential::checks(&store, base).await;
    authenticators::checks(&store, base).await;
    recovery::checks(&store, base).await;
    devices::checks(&store, base).await;
    changes::checks(&store, base).await;
    users::credential(&store, base).await;
    races::credential(&store, &store, base).await;
    authenticators::races(&store, &store, base).await;
    changes::races(&store, &store, base).await;
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
    ephemeral::checks(&store, base).await;
    users::ephemeral(&store, base).await;
    races::ephemeral(&store, &store, base).await;
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
        call!(a.put_pending(&user, &record, true)),
        "pair: put_pending via a"
    );
    assert_eq!(
        single(&b, &user).await,
        Some(record.clone()),
        "pair: a pending credential written via a must be visible via b"
    );
    let codes = random_codes(3);
    assert!(
        call!(b.activate(&user, &secret, 100, 0, Some(&codes), MAX)),
        "pair: activate via b of a secret put via a"
    );
    assert!(
        !call!(a.put_pending(&user, &record, true)),
        "pair: put_pending via a must refuse once b activated"
    );
    assert!(
        call!(a.advance_step(&user, ID, &secret, 101, 1, NOW)),
        "pair: advance via a"
    );
    assert!(
        !call!(b.advance_step(&user, ID, &secret, 101, 1, NOW)),
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
    assert!(call!(b.delete_credentials(&user)), "pair: delete via b");
    assert_eq!(
        single(&a, &user).await,
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
        call!(b.use_device(&device, base)),
        Some(DeviceRecord {
            last_used_at: base,
            ..record
        }),
        "pair: a device token put via a must be visible via b"
    );
    assert_eq!(call!(b.delete_devices(&user)), 1, "pair: delete via b");
    assert_eq!(
        call!(a.use_device(&device, base)),
        None,
        "pair: a device token deleted via b must be gone via a"
    );
    let change = ScheduledChangeRecord {
        id: "disable".to_owned(),
        kind: ChangeKind::Disable,
        requested_at: base,
        not_before: base + 3600,
    };
    assert!(
        call!(a.put_change(&user, &change)),
        "pair: put_change via a"
    );
    assert!(
        !call!(b.put_change(&user, &change)),
        "pair: put_change via b must refuse an id put via a"
    );
    assert_eq!(
        call!(b.take_change(&user, "disable", u64::MAX)),
        Some(change),
        "pair: a change put via a must be taken via b"
    );
    assert_eq!(
        call!(a.list_changes(&user)),
        [],
        "pair: a change taken via b must be gone via a"
    );
    let notice: TokenHash = random::<32>();
    call!(a.put_notice(&notice, &user, base + 3600));
    assert!(
        call!(b.take_notice(&user, &notice, base)),
        "pair: a notice token put via a must be accepted via b"
    );
    assert!(
        !call!(a.take_notice(&user, &notice, base)),
        "pair: a notice token accepted via b must be refused via a"
    );
    races::credential(&a, &b, base).await;
    authenticators::races(&a, &b, base).await;
    changes::races(&a, &b, base).await;
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
    races::ephemeral(&a, &b, base).await;
}

/// Checks that every [`CredentialStore`] method of a store whose backing storage is unreachable
/// (server down, connection cut, tables missing) returns an error: never an answer the service
/// would act on, never a panic.
///
/// # Panics
///
/// When a method returns `Ok`, naming it.
pub async fn credential_store_unreachable<S: CredentialStore>(store: &S) {
    credential::unreachable(store).await;
}

/// Checks that every [`EphemeralStore`] method of a store whose backing storage is unreachable
/// returns an error.
///
/// # Panics
///
/// When a method returns `Ok`, naming it.
pub async fn ephemeral_store_unreachable<S: EphemeralStore>(store: &S) {
    ephemeral::unreachable(store).await;
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

/// The id of the authenticator in the checks that need only one.
const ID: &str = "tf-conformance-authenticator";

/// The `now` the single-authenticator checks pass to `advance_step` (what it records as
/// `last_used_at`).
const NOW: u64 = 1_800_000_000;

/// The `max_enabled` of the checks not about the limit.
const MAX: u32 = crate::store::MAX_AUTHENTICATORS;

/// The user's only authenticator, if any (panics if the store returned more than one).
async fn single<S: CredentialStore>(store: &S, user: &str) -> Option<CredentialRecord> {
    let mut list = call!(store.get_credentials(user));
    assert!(
        list.len() <= 1,
        "get_credentials returned {} authenticators for a user who was given one",
        list.len()
    );
    list.pop()
}

fn pending_record(secret: &[u8], created_at: u64) -> CredentialRecord {
    CredentialRecord {
        id: ID.to_owned(),
        name: "Phone".to_owned(),
        encrypted_secret: secret.to_vec(),
        algorithm: Algorithm::Sha1,
        digits: 6,
        period: 30,
        enabled: false,
        last_step: None,
        drift: 0,
        created_at,
        last_used_at: None,
        replaces: None,
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
        call!(store.put_pending(user, &pending_record(&secret, base), true)),
        "put_pending for a new user must succeed"
    );
    assert!(
        call!(store.activate(user, &secret, step, 0, Some(codes), MAX)),
        "activate with the pending secret must succeed"
    );
    secret
}

fn device_record(user_id: &str, expires_at: u64) -> DeviceRecord {
    DeviceRecord {
        user_id: user_id.to_owned(),
        created_at: expires_at.saturating_sub(86_400),
        expires_at,
        trusted_until: None,
        label: String::new(),
        last_used_at: expires_at.saturating_sub(86_400),
    }
}
