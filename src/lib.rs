#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod audit;
pub mod backup_codes;
pub mod clock;
pub mod crypto;
pub mod danger;
pub mod error;
pub mod guide;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod housekeeping;
mod key_text;
pub mod otp;
#[cfg(feature = "qr")]
#[cfg_attr(docsrs, doc(cfg(feature = "qr")))]
pub mod qr;
pub mod rate_limit;
mod rng;
mod secret;
pub mod service;
pub mod store;
pub mod uri;

pub use audit::{AuditEvent, AuditSink};
pub use backup_codes::{BackupCode, BackupCodeKey};
pub use clock::{Clock, ManualClock, SystemClock};
pub use crypto::{Decrypted, Keyring, SecretCipher};
pub use error::ServiceError;
pub use error::{CryptoError, Error, OtpError};
pub use otp::{
    Algorithm, Code, Diagnosis, Digits, Hotp, HotpOutcome, Totp, TotpBuilder, TotpMatch,
    TotpOutcome, Window,
};
#[cfg(feature = "qr")]
#[cfg_attr(docsrs, doc(cfg(feature = "qr")))]
pub use qr::Qr;
pub use rate_limit::RateLimitPolicy;
pub use secret::Secret;
// `Config`, `Status`, `Method` and `LoginStart` stay under `service`, where they cannot collide
// with an application's own names.
pub use service::{
    ChallengeToken, ConfirmOutcome, DeviceToken, DisableOutcome, Enrolment, EnrolmentStart,
    ImportOutcome, ImportedCredential, RecoveryCompletion, RecoveryRequest, RegenerateOutcome,
    TwoFactor, VerifyOutcome,
};
pub use store::MemoryStore;
pub use uri::{OtpAuthUri, OtpAuthUriBuilder, OtpKind, UriParts};
