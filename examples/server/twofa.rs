//! The second factor, entirely through the crate's `TwoFactor` service.
//! TEMPORARY placeholder until the service branch lands: every call fails closed (503).

use zeroize::Zeroizing;

use crate::config::Config;
use crate::db::Db;
use crate::error::ApiError;

/// Result of a code check.
pub enum Check {
    Success,
    Rejected,
    RateLimited { retry_after: u64 },
}

pub enum LoginStart {
    Challenge(Zeroizing<String>),
    NotEnrolled,
    RateLimited { retry_after: u64 },
}

pub struct Status {
    pub enabled: bool,
    pub backup_codes_remaining: u32,
}

pub struct Enrolment {
    pub secret: Zeroizing<String>,
    pub otpauth_uri: Zeroizing<String>,
    pub qr_svg: String,
}

pub struct TwoFa;

impl TwoFa {
    pub async fn new(_db: &Db, _config: &Config) -> Result<Self, String> {
        Ok(Self)
    }
    pub async fn status(&self, _user: &str) -> Result<Status, ApiError> {
        Ok(Status {
            enabled: false,
            backup_codes_remaining: 0,
        })
    }
    pub async fn verify(&self, _user: &str, _code: &str) -> Result<Check, ApiError> {
        Err(ApiError::Unavailable)
    }
    pub async fn start_login(&self, _user: &str) -> Result<LoginStart, ApiError> {
        Err(ApiError::Unavailable)
    }
    pub async fn complete_login(
        &self,
        _c: &str,
        _code: &str,
    ) -> Result<(Check, Option<String>), ApiError> {
        Err(ApiError::Unavailable)
    }
    pub async fn start_enrolment(&self, _u: &str, _e: &str) -> Result<Option<Enrolment>, ApiError> {
        Err(ApiError::Unavailable)
    }
    pub async fn confirm_enrolment(
        &self,
        _u: &str,
        _c: &str,
    ) -> Result<Result<Vec<Zeroizing<String>>, Check>, ApiError> {
        Err(ApiError::Unavailable)
    }
    pub async fn regenerate_backup_codes(
        &self,
        _u: &str,
        _c: &str,
    ) -> Result<Result<Vec<Zeroizing<String>>, Check>, ApiError> {
        Err(ApiError::Unavailable)
    }
    pub async fn disable(&self, _u: &str, _c: &str) -> Result<Check, ApiError> {
        Err(ApiError::Unavailable)
    }
}
