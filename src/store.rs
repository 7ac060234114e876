//! Storage traits that applications implement, and the stores this crate ships.
//!
//! State is split in two so each half can live where it fits:
//!
//! - [`CredentialStore`]: durable credentials (the user's authenticators: encrypted TOTP
//!   secrets, enabled or pending, each with its last accepted step and drift; backup-code
//!   hashes, recovery requests). Lives in the application's main database.
//! - [`EphemeralStore`]: short-lived state (login challenges, rate-limit counters). Can live in
//!   the same database or in Redis.
//!
//! Device tokens (which browser completed a login before, and which the user trusts to skip the
//! second factor; see [`Remember`](crate::service::Remember)) live
//! with the credentials: they must survive as long as the owner's trust in the device.
//!
//! # The contract
//!
//! Every operation that must happen at most once is a single method that the store makes atomic
//! (one conditional SQL statement, one transaction, one Lua script). The service never reads and
//! then writes: it calls the atomic method and trusts its answer. A store that breaks an atomicity
//! contract lets a code be used twice; run `store::conformance` (feature
//! `test-util`) against yours.
//!
//! All times are absolute Unix seconds supplied by the caller (never read from a clock inside the
//! store), so several application instances can share one store and tests can control time.
//!
//! Errors are for infrastructure failures only. An operation that returns `Err` must not have
//! consumed anything it would have reported as consumed: the service treats every `Err` as "fail
//! closed" (nobody gets in), so a half-applied consumption would silently burn a code.
//!
//! # The SQL stores, on either sqlx
//!
//! `SqliteStore` and `PostgresStore` take the pool the application already has, of sqlx 0.9
//! (features `sqlite`, `postgres`) or sqlx 0.8 (features `sqlite-sqlx08`, `postgres-sqlx08`):
//! one name, one `SqlStoreError`, the same code in the
//! application whichever sqlx it is on; only the feature names in its `Cargo.toml` say which
//! (`any_sqlx` explains how). Both versions share one schema, so moving between them needs no
//! data migration. The stores they wrap, for what depends on the version (the pool), are
//! `store::sqlite`, `store::postgres` (sqlx 0.9) and `store::sqlx08` (sqlx 0.8).

use std::future::Future;

/// Most authenticators a store must be able to hold for one user (enabled ones plus one
/// pending); [`Config::max_authenticators`](crate::service::Config::max_authenticators) is capped by it.
pub const MAX_AUTHENTICATORS: u32 = 20;
/// Longest authenticator id, in bytes (the service makes 22-character ids).
pub const MAX_AUTHENTICATOR_ID_LEN: usize = 64;

/// One authenticator of a user: a TOTP secret held by one app on one device ("Work phone").
///
/// A user has any number of enabled authenticators (up to the service's limit) and at most one
/// pending one (shown as a QR code, not yet confirmed by a code).
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialRecord {
    /// The authenticator's id, unique among the user's authenticators (at most
    /// [`MAX_AUTHENTICATOR_ID_LEN`] bytes; chosen by the service, never by the user).
    pub id: String,
    /// The name the user gave it (at most 64 characters, no control characters).
    pub name: String,
    /// The secret, encrypted by a `SecretCipher` (`crate::crypto`) with associated
    /// data binding the user id and purpose. Never store it in plain text.
    pub encrypted_secret: Vec<u8>,
    /// HMAC algorithm name as in otpauth URIs (`SHA1`, `SHA256`, `SHA512`).
    pub algorithm: crate::Algorithm,
    /// Number of digits.
    pub digits: u32,
    /// Period in seconds.
    pub period: u64,
    /// `false` while enrolment is pending (secret shown, not yet confirmed by a code).
    pub enabled: bool,
    /// The last accepted time step; `None` before the first acceptance.
    pub last_step: Option<u64>,
    /// The drift (in steps) of the last accepted code.
    pub drift: i64,
    /// When this record was created (Unix seconds).
    pub created_at: u64,
    /// When a code of this authenticator last logged in or proved the user (Unix seconds);
    /// `None` before the first use after confirmation.
    pub last_used_at: Option<u64>,
    /// For a pending authenticator: the id of the authenticator it replaces, removed in the same
    /// atomic step that enables this one ([`CredentialStore::activate`]). `None` otherwise.
    pub replaces: Option<String>,
}

impl core::fmt::Debug for CredentialRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CredentialRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("encrypted_secret", &"[REDACTED]")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .field("enabled", &self.enabled)
            .field("last_step", &self.last_step)
            .field("drift", &self.drift)
            .field("created_at", &self.created_at)
            .field("last_used_at", &self.last_used_at)
            .field("replaces", &self.replaces)
            .finish()
    }
}

/// What [`CredentialStore::remove_credential`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveCredential {
    /// The authenticator is gone.
    Removed,
    /// The user has no authenticator with that id.
    NotFound,
    /// Refused: it is the user's last enabled authenticator (only disabling 2FA removes it).
    LastEnabled,
}

pub use crate::backup_codes::BackupCodeHash;

/// A SHA-256 hash of a login challenge token. Stores never see the token itself.
pub type ChallengeHash = [u8; 32];

/// A pending login challenge: the password was right, the second factor is still owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRecord {
    /// Whose login this is.
    pub user_id: String,
    /// Unix time after which the challenge is void.
    pub expires_at: u64,
}

/// A SHA-256 hash of a recovery cancel token or a device token. Stores never see the token.
pub type TokenHash = [u8; 32];

/// A request to remove a user's second factor when the phone and the backup codes are both lost.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryRecord {
    /// When the request was made.
    pub requested_at: u64,
    /// When it takes effect without an operator's approval (unless `needs_approval`).
    pub not_before: u64,
    /// Whether an operator approved it (it may then complete at once).
    pub approved: bool,
    /// Whether the request was made while the account was locked or had failed second factors
    /// since the last login: it then completes only with an operator's approval, never by waiting.
    pub needs_approval: bool,
    /// The user's failed attempts since the last login when the request was made; more failures
    /// during the wait make the request need approval.
    pub failures_at_request: u32,
    /// Hash of the single-use cancel token handed to the owner out of band (SHA-256 of the
    /// token; requests stored before this field existed read as all zeros, which no token
    /// hashes to).
    pub cancel_hash: TokenHash,
}

impl core::fmt::Debug for RecoveryRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecoveryRecord")
            .field("requested_at", &self.requested_at)
            .field("not_before", &self.not_before)
            .field("approved", &self.approved)
            .field("needs_approval", &self.needs_approval)
            .field("failures_at_request", &self.failures_at_request)
            .field("cancel_hash", &"[REDACTED]")
            .finish()
    }
}

/// A device token: a browser that completed a login for this user and may use its own attempt
/// budget (see [`CompleteLogin::device`](crate::service::CompleteLogin::device)), and,
/// if the user asked to remember it, skip the second factor until `trusted_until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Whose device this is; a token presented for another user is ignored.
    pub user_id: String,
    /// When the token was issued.
    pub created_at: u64,
    /// Unix time after which the token is void.
    pub expires_at: u64,
    /// Until when (Unix seconds, exclusive) a login with this token skips the second factor;
    /// `None` for a device that is only known, not trusted. Never after `expires_at`.
    pub trusted_until: Option<u64>,
    /// What the application called the device when the user trusted it ("Firefox on Linux"),
    /// at most 64 characters; empty for a device that is only known.
    pub label: String,
    /// When the token was last presented with a valid login ([`CredentialStore::use_device`]).
    pub last_used_at: u64,
}

pub use crate::rate_limit::LimiterState;

/// What [`EphemeralStore::update_limiter`] read and what it stored, so the caller can tell
/// whether its update granted an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterUpdate {
    /// The state before the update (the default when absent).
    pub before: LimiterState,
    /// The state stored.
    pub after: LimiterState,
}

/// What [`CredentialStore::delete_user`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletedCredentials {
    /// Whether the user had an authenticator (pending or enabled).
    pub credential: bool,
    /// The hashes of the device tokens removed, so the caller can drop their rate-limit states.
    pub devices: Vec<TokenHash>,
}

/// A change of the user's factors that takes effect only after a delay, because the code that
/// asked for it came from a factor too new to act at once (a backup code, or an authenticator
/// added less than the change delay ago). Any older factor, a trusted browser or a notice token
/// cancels it; see [`TwoFactor::scheduled_changes`](crate::TwoFactor::scheduled_changes).
#[derive(Clone, PartialEq, Eq)]
pub struct ScheduledChangeRecord {
    /// The change's id, unique among the user's scheduled changes (at most
    /// [`MAX_AUTHENTICATOR_ID_LEN`] + 7 bytes; chosen by the service: one change of each kind and
    /// target at a time).
    pub id: String,
    /// What happens when it takes effect.
    pub kind: ChangeKind,
    /// When it was asked for (Unix seconds).
    pub requested_at: u64,
    /// When it may take effect (Unix seconds).
    pub not_before: u64,
}

impl core::fmt::Debug for ScheduledChangeRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ScheduledChangeRecord")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("requested_at", &self.requested_at)
            .field("not_before", &self.not_before)
            .finish()
    }
}

/// What a [`ScheduledChangeRecord`] does when it takes effect.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangeKind {
    /// Remove the authenticator with this id (unless it is the user's last).
    RemoveAuthenticator {
        /// The authenticator's id.
        authenticator: String,
    },
    /// Replace the backup codes with these hashes (the codes were shown when the change was
    /// asked for; the old ones work until it takes effect).
    RegenerateBackupCodes {
        /// Hashes of the new codes.
        hashes: Vec<BackupCodeHash>,
    },
    /// Turn 2FA off: every authenticator and the backup codes go.
    Disable,
}

impl ChangeKind {
    /// `"remove_authenticator"`, `"regenerate_backup_codes"` or `"disable"`: the name SQL stores
    /// keep in their `kind` column.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::RemoveAuthenticator { .. } => "remove_authenticator",
            Self::RegenerateBackupCodes { .. } => "regenerate_backup_codes",
            Self::Disable => "disable",
        }
    }
}

impl core::fmt::Debug for ChangeKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::RemoveAuthenticator { authenticator } => f
                .debug_struct("RemoveAuthenticator")
                .field("authenticator", authenticator)
                .finish(),
            Self::RegenerateBackupCodes { hashes } => f
                .debug_struct("RegenerateBackupCodes")
                .field("hashes", &hashes.len())
                .finish(),
            Self::Disable => f.write_str("Disable"),
        }
    }
}

/// Durable credential storage. See the [module docs](self) for the atomicity contract.
pub trait CredentialStore: Send + Sync {
    /// The store's infrastructure error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Every authenticator of the user, enabled and pending, oldest first (by `created_at`, then
    /// `id`); empty for an unknown user.
    fn get_credentials(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<CredentialRecord>, Self::Error>> + Send;

    /// Stores `record` (with `enabled == false`) as the user's pending authenticator, replacing
    /// any pending one (a user has at most one). **Atomic:** with `only_if_none_enabled`, refuses
    /// (returns `false`, changes nothing) when the user has an enabled authenticator, so a first
    /// enrolment, which needs no code, can never start beside an active factor. Enabled
    /// authenticators are never touched.
    fn put_pending(
        &self,
        user_id: &str,
        record: &CredentialRecord,
        only_if_none_enabled: bool,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Turns the pending authenticator whose encrypted secret equals `expected_secret` into an
    /// enabled one, with last accepted step `step` and drift `drift`. **Atomic, all or
    /// nothing:** returns `false` and changes nothing unless every condition holds:
    ///
    /// - there is such a pending authenticator (not confirmed already, replaced by a newer
    ///   enrolment, or removed);
    /// - with `backup_codes` (a first enrolment): the user has **no** enabled authenticator, and
    ///   the user's backup codes become `backup_codes`;
    /// - without (an added authenticator): the user has **at least one** enabled authenticator,
    ///   the backup codes stay, and the pending record's `replaces` authenticator, if it still
    ///   exists, is deleted in the same step;
    /// - afterwards the user has at most `max_enabled` enabled authenticators.
    ///
    /// Of concurrent calls for one pending authenticator at most one returns `true`.
    fn activate(
        &self,
        user_id: &str,
        expected_secret: &[u8],
        step: u64,
        drift: i64,
        backup_codes: Option<&[BackupCodeHash]>,
        max_enabled: u32,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Compare-and-set of an authenticator's last accepted step. **Atomic:** sets
    /// `last_step = step`, `drift = drift` and `last_used_at = now` only if the user's
    /// authenticator `id` is enabled, its encrypted secret equals `expected_secret` (the secret
    /// the code was checked against, not one written since), and `last_step` is unset or
    /// strictly less than `step`; returns whether it did (a code checked while a lazy key
    /// rotation rewrote the secret is refused too: rare, and it fails closed). Of N concurrent
    /// calls with the same step exactly one returns `true`. This is what makes a TOTP code single
    /// use, per authenticator.
    fn advance_step(
        &self,
        user_id: &str,
        id: &str,
        expected_secret: &[u8],
        step: u64,
        drift: i64,
        now: u64,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Replaces authenticator `id`'s encrypted secret with `new_secret` only if it still equals
    /// `old_secret` (lazy key rotation). **Atomic** compare-and-set; returns whether it replaced.
    fn rewrite_secret(
        &self,
        user_id: &str,
        id: &str,
        old_secret: &[u8],
        new_secret: &[u8],
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Sets the name of the user's authenticator `id` (pending or enabled); returns whether it
    /// exists.
    fn rename_credential(
        &self,
        user_id: &str,
        id: &str,
        name: &str,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Deletes the user's authenticator `id`. **Atomic:** refuses
    /// ([`RemoveCredential::LastEnabled`], nothing changed) when it is the user's only enabled
    /// authenticator, so two concurrent removals of a user's last two leave one. A pending
    /// authenticator can always be removed.
    fn remove_credential(
        &self,
        user_id: &str,
        id: &str,
    ) -> impl Future<Output = Result<RemoveCredential, Self::Error>> + Send;

    /// Removes every authenticator of the user (pending and enabled), the backup codes, the
    /// recovery request and the scheduled changes, and leaves the user's device tokens and notice
    /// tokens (the service decides when they go). Returns whether an authenticator existed.
    fn delete_credentials(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Deletes the backup code with this hash and returns how many remain, or `None` if the user
    /// has no such code. **Atomic delete-and-return:** of N concurrent calls with the same hash,
    /// exactly one returns `Some`.
    fn consume_backup_code(
        &self,
        user_id: &str,
        hash: &BackupCodeHash,
    ) -> impl Future<Output = Result<Option<u32>, Self::Error>> + Send;

    /// Replaces the whole set of backup codes (old codes void), only if the user has an enabled
    /// authenticator. **Atomic:** no moment where both sets, or neither, are valid. Returns whether
    /// it replaced.
    fn replace_backup_codes(
        &self,
        user_id: &str,
        hashes: &[BackupCodeHash],
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// How many unused backup codes the user has.
    fn backup_codes_remaining(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<u32, Self::Error>> + Send;

    /// Stores a recovery request, replacing an earlier one.
    fn put_recovery(
        &self,
        user_id: &str,
        record: &RecoveryRecord,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The user's recovery request, if any.
    fn get_recovery(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Option<RecoveryRecord>, Self::Error>> + Send;

    /// Marks the user's recovery request approved; returns whether there was one.
    fn approve_recovery(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Deletes the user's recovery request; returns whether there was one. **Atomic:** with
    /// `include_approved == false` an approved request is left as it is (returns `false`), so a
    /// login racing an operator's approval never deletes the approved request.
    fn cancel_recovery(
        &self,
        user_id: &str,
        include_approved: bool,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Deletes the user's recovery request only if its `cancel_hash` equals `cancel_hash`;
    /// returns whether it did. **Atomic:** a token cancels at most once.
    fn cancel_recovery_with_token(
        &self,
        user_id: &str,
        cancel_hash: &TokenHash,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Completes the user's recovery request if it is approved, or if `approval_required` is
    /// false, the request's `needs_approval` is false and `not_before <= now`: deletes it
    /// together with every authenticator, the backup codes and the scheduled changes (not the
    /// device tokens) and returns `true`.
    /// **Atomic:** of concurrent calls at most one returns `true`; a cancelled request never
    /// completes.
    fn complete_recovery(
        &self,
        user_id: &str,
        now: u64,
        approval_required: bool,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Stores a scheduled change of the user's factors, unless the user already has one with the
    /// same `id` (the earlier one stays, with its own delay); returns whether it stored.
    fn put_change(
        &self,
        user_id: &str,
        record: &ScheduledChangeRecord,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// The user's scheduled changes, oldest first (by `requested_at`, then `id`).
    fn list_changes(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<ScheduledChangeRecord>, Self::Error>> + Send;

    /// Deletes the user's scheduled change `id` and returns it, if it exists and its
    /// `not_before <= due_by` (pass `u64::MAX` to cancel it whenever it is due). **Atomic
    /// delete-and-return:** of concurrent calls at most one gets `Some`, so a change takes
    /// effect at most once and a cancelled change never takes effect.
    fn take_change(
        &self,
        user_id: &str,
        id: &str,
        due_by: u64,
    ) -> impl Future<Output = Result<Option<ScheduledChangeRecord>, Self::Error>> + Send;

    /// Deletes every scheduled change of the user; returns how many there were.
    fn delete_changes(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// Stores the hash of a notice token: a single-use token sent to the owner with a notice
    /// (a recovery request, a scheduled change, a new authenticator) that cancels it or locks the
    /// account down without a second factor. Valid while `now < expires_at`.
    fn put_notice(
        &self,
        hash: &TokenHash,
        user_id: &str,
        expires_at: u64,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Deletes the notice token `hash` if it belongs to `user_id` and `now < expires_at`;
    /// returns whether it did. **Atomic:** a token is accepted at most once.
    fn take_notice(
        &self,
        user_id: &str,
        hash: &TokenHash,
        now: u64,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Stores a device token's record under the token's hash.
    fn put_device(
        &self,
        hash: &TokenHash,
        record: &DeviceRecord,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The device record under `hash`, if it exists and `now < expires_at`, after setting its
    /// `last_used_at` to `now`. **Atomic:** once [`delete_device`](Self::delete_device) or
    /// [`delete_devices`](Self::delete_devices) returned, no call returns the record.
    fn use_device(
        &self,
        hash: &TokenHash,
        now: u64,
    ) -> impl Future<Output = Result<Option<DeviceRecord>, Self::Error>> + Send;

    /// The user's device tokens with `now < expires_at`, with their hashes, oldest first.
    fn list_devices(
        &self,
        user_id: &str,
        now: u64,
    ) -> impl Future<Output = Result<Vec<(TokenHash, DeviceRecord)>, Self::Error>> + Send;

    /// Deletes one device token; returns whether it existed. **Atomic:** of concurrent calls
    /// with the same hash, exactly one returns `true`.
    fn delete_device(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Deletes every device token of the user; returns how many there were.
    fn delete_devices(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// Removes everything stored for the user: every authenticator (pending or enabled), backup
    /// codes, recovery request, scheduled changes, notice tokens and **every device token**, and
    /// returns what went (the device
    /// hashes let the service drop their rate-limit states). **Atomic, all or nothing:** after
    /// `Ok`, nothing of the user is left; after `Err`, the store may be as before or fully
    /// deleted, never half (call it again). For a user with nothing stored it returns the
    /// default (no credential, no devices).
    fn delete_user(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<DeletedCredentials, Self::Error>> + Send;
}

/// Short-lived state: login challenges and rate-limit counters. See the [module docs](self).
pub trait EphemeralStore: Send + Sync {
    /// The store's infrastructure error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Stores a challenge under the hash of its token. Expired challenges may be purged at any
    /// time after `expires_at`.
    fn put_challenge(
        &self,
        hash: &ChallengeHash,
        record: &ChallengeRecord,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The challenge, if it exists and `now < expires_at`, without consuming it.
    fn get_challenge(
        &self,
        hash: &ChallengeHash,
        now: u64,
    ) -> impl Future<Output = Result<Option<ChallengeRecord>, Self::Error>> + Send;

    /// Deletes the challenge and returns it if it existed and `now < expires_at`. **Atomic
    /// delete-and-return:** of N concurrent calls exactly one gets `Some`.
    fn take_challenge(
        &self,
        hash: &ChallengeHash,
        now: u64,
    ) -> impl Future<Output = Result<Option<ChallengeRecord>, Self::Error>> + Send;

    /// Applies `update` to the limiter state under `key` (the default state when absent) and
    /// stores the result, returning the state read and the state stored (the `before` that
    /// `after` was computed from). **Atomic read-modify-write:** concurrent calls on one key
    /// are serialised, none lost (a transaction with a row lock, a compare-and-set retry loop, or
    /// `WATCH`/`MULTI`). `update` is a pure function and may be called more than once on retry.
    /// `expire_at` lets the store drop the state after that Unix time.
    fn update_limiter<F>(
        &self,
        key: &str,
        expire_at: u64,
        update: F,
    ) -> impl Future<Output = Result<LimiterUpdate, Self::Error>> + Send
    where
        F: Fn(LimiterState) -> LimiterState + Send + Sync;

    /// The limiter state under `key`, or the default.
    fn get_limiter(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<LimiterState, Self::Error>> + Send;

    /// Deletes every challenge whose `user_id` is `user_id`, and the limiter states under
    /// `limiter_keys` (the service passes the user's own key and those of the user's devices).
    /// Returns how many entries went. A challenge put concurrently with the call may survive it;
    /// it leads nowhere once the credential is gone.
    fn delete_user_state(
        &self,
        user_id: &str,
        limiter_keys: &[String],
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;
}

/// Deleting what has expired: challenges, device tokens and limiter states past their expiry.
/// Expired entries are never reported valid; purging only frees the space they take.
///
/// Every store of this crate implements it. Run it every few minutes, for example with
/// `housekeeping::spawn` (feature `tokio`), which takes any `Purge`.
pub trait Purge: Send + Sync {
    /// The store's infrastructure error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Deletes challenges, device tokens and notice tokens with `expires_at <= now` and limiter
    /// states whose
    /// `expire_at < now`; returns how many entries went (a store whose backend expires entries by
    /// itself, like Redis, returns 0).
    fn purge_expired(&self, now: u64) -> impl Future<Output = Result<u64, Self::Error>> + Send;
}

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod conformance;
pub mod memory;

pub use memory::MemoryStore;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[path = "store/compat09.rs"]
mod compat;
#[cfg(any(
    feature = "sqlite",
    feature = "postgres",
    feature = "sqlite-sqlx08",
    feature = "postgres-sqlx08"
))]
mod sql;
#[cfg(any(
    feature = "sqlite",
    feature = "postgres",
    feature = "sqlite-sqlx08",
    feature = "postgres-sqlx08"
))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "sqlite",
        feature = "postgres",
        feature = "sqlite-sqlx08",
        feature = "postgres-sqlx08"
    )))
)]
pub use sql::{DEFAULT_TABLE_PREFIX, DatabaseError, SqlStoreError};

#[cfg(any(
    feature = "sqlite",
    feature = "postgres",
    feature = "sqlite-sqlx08",
    feature = "postgres-sqlx08"
))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "sqlite",
        feature = "postgres",
        feature = "sqlite-sqlx08",
        feature = "postgres-sqlx08"
    )))
)]
pub mod any_sqlx;
#[cfg(any(feature = "postgres", feature = "postgres-sqlx08"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "postgres", feature = "postgres-sqlx08")))
)]
pub use any_sqlx::PostgresStore;
#[cfg(any(feature = "sqlite", feature = "sqlite-sqlx08"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "sqlite-sqlx08"))))]
pub use any_sqlx::SqliteStore;

#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;

#[cfg(any(feature = "sqlite-sqlx08", feature = "postgres-sqlx08"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "sqlite-sqlx08", feature = "postgres-sqlx08")))
)]
pub mod sqlx08;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{RedisStore, RedisStoreError};
