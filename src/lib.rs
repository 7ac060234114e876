#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod clock;
pub mod danger;
pub mod error;
pub mod otp;
mod rng;
mod secret;
pub mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, OtpError};
pub use otp::{
    Algorithm, Code, Diagnosis, Digits, Hotp, HotpOutcome, Totp, TotpBuilder, TotpMatch,
    TotpOutcome, Window,
};
pub use secret::Secret;
pub use store::MemoryStore;
