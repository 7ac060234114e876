//! Error types.
//!
//! A wrong, replayed or rate-limited code is never an `Err`: those are ordinary outcomes of
//! verification. The types here are for malformed input and infrastructure failures. Messages name
//! what was wrong and where, but never echo a secret or a code.

use thiserror::Error;

/// Any error this crate returns.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A base32 string could not be decoded.
    #[error(transparent)]
    Base32(#[from] Base32Error),
    /// Secret bytes were unacceptable (too short or too long).
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// OTP parameters or a code were malformed.
    #[error(transparent)]
    Otp(#[from] OtpError),
    /// An otpauth:// URI could not be built or parsed.
    #[error(transparent)]
    Uri(#[from] UriError),
    /// Encryption or key configuration failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A QR code could not be rendered.
    #[cfg(feature = "qr")]
    #[cfg_attr(docsrs, doc(cfg(feature = "qr")))]
    #[error(transparent)]
    Qr(#[from] QrError),
    /// A service operation failed (infrastructure, cipher, configuration, input).
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// Why a base32 secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Base32Error {
    /// Nothing was left after removing spaces, hyphens and padding.
    #[error("base32 secret is empty")]
    Empty,
    /// A character outside the RFC 4648 base32 alphabet (A–Z, 2–7), spaces, hyphens or `=`.
    #[error("invalid base32 character {character:?} at position {position}")]
    InvalidCharacter {
        /// The offending character. Only characters outside the alphabet are reported, so this
        /// never reveals a character of the secret.
        character: char,
        /// Its position (in characters, from 0) in the input as given.
        position: usize,
    },
    /// `=` padding appeared before the end of the input.
    #[error("base32 padding '=' at position {position} is not at the end")]
    MisplacedPadding {
        /// Position (in characters, from 0) in the input as given.
        position: usize,
    },
    /// The number of base32 characters cannot be produced by any byte string (1, 3 or 6 modulo 8).
    #[error("base32 secret has an impossible length of {length} characters")]
    InvalidLength {
        /// Number of alphabet characters after normalisation.
        length: usize,
    },
    /// The decoded secret would be larger than [`crate::Secret::MAX_LEN`].
    #[error("base32 secret decodes to more than {max} bytes")]
    TooLong {
        /// The limit in bytes.
        max: usize,
    },
}

/// Why secret bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Shorter than the RFC 4226 R6 minimum of 16 bytes (128 bits).
    #[error(
        "secret is {len} bytes; at least {min} are required (shorter legacy secrets need an explicit danger option)"
    )]
    TooShort {
        /// Length given.
        len: usize,
        /// Minimum accepted.
        min: usize,
    },
    /// Longer than [`crate::Secret::MAX_LEN`].
    #[error("secret is {len} bytes; at most {max} are accepted")]
    TooLong {
        /// Length given.
        len: usize,
        /// Maximum accepted.
        max: usize,
    },
    /// Empty secret (refused even through `danger`).
    #[error("secret is empty")]
    Empty,
}

/// Malformed OTP parameters, or a malformed code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OtpError {
    /// Digits outside 6..=10.
    #[error("digits must be between 6 and 10, got {0}")]
    InvalidDigits(u32),
    /// A TOTP period of zero seconds.
    #[error("period must be at least 1 second")]
    ZeroPeriod,
    /// A verification window wider than the cap (see [`crate::Window::MAX_STEPS`]).
    #[error(
        "window of {past} past and {future} future steps exceeds the cap of {max} each way (use danger::wide_window)"
    )]
    WindowTooLarge {
        /// Past steps requested.
        past: u32,
        /// Future steps requested.
        future: u32,
        /// The cap.
        max: u32,
    },
    /// An HOTP look-ahead wider than the cap.
    #[error("HOTP look-ahead of {0} exceeds the cap of {max}", max = crate::Hotp::MAX_LOOK_AHEAD)]
    LookAheadTooLarge(u32),
    /// A diagnosis range wider than the cap.
    #[error("diagnosis range of {0} steps exceeds the cap of {max}", max = crate::Totp::MAX_DIAGNOSE_STEPS)]
    DiagnoseRangeTooLarge(u32),
    /// The time given is before the TOTP epoch T0.
    #[error("time {time} is before T0 ({t0})")]
    TimeBeforeT0 {
        /// Unix time given.
        time: u64,
        /// The configured T0.
        t0: u64,
    },
    /// A counter or time step would overflow.
    #[error("counter overflow")]
    CounterOverflow,
    /// The code has the wrong number of characters.
    #[error("code must have {expected} digits, got {actual} characters")]
    CodeLength {
        /// Digits configured.
        expected: u32,
        /// Characters given.
        actual: usize,
    },
    /// An algorithm name other than SHA1, SHA256 or SHA512.
    #[error("unknown algorithm (expected SHA1, SHA256 or SHA512)")]
    UnknownAlgorithm,
    /// The code contains something other than ASCII digits.
    #[error("code must contain only digits 0-9")]
    CodeNotDigits,
}

/// Why an otpauth:// URI could not be built or parsed.
///
/// Messages name the part of the URI that was wrong, never its value: a URI carries the secret.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UriError {
    /// The URI is longer than [`crate::OtpAuthUri::MAX_LEN`] bytes; refused before any parsing.
    #[error("otpauth URI is {len} bytes; at most {max} are accepted")]
    TooLong {
        /// Length given, in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The scheme is not `otpauth://` (any case).
    #[error("not an otpauth:// URI")]
    InvalidScheme,
    /// The type (the host part) is neither `totp` nor `hotp`.
    #[error("otpauth type must be totp or hotp")]
    UnknownType,
    /// Nothing after the type: no `/label`.
    #[error("otpauth URI has no label (expected otpauth://TYPE/ISSUER:ACCOUNT?...)")]
    MissingLabel,
    /// The account name is empty.
    #[error("otpauth URI has an empty account name")]
    EmptyAccount,
    /// The issuer is empty (building), or the label has an empty issuer before the colon.
    #[error("otpauth issuer is empty")]
    EmptyIssuer,
    /// The account name begins with whitespace, which the Key URI Format strips after the colon.
    #[error("account name must not begin with whitespace")]
    AccountLeadingWhitespace,
    /// An account containing `:` without an issuer would be read as `issuer:account` by apps.
    #[error(
        "an account name containing ':' needs an issuer, or apps read the part before ':' as the issuer"
    )]
    AmbiguousAccount,
    /// The issuer is longer than [`crate::OtpAuthUri::MAX_ISSUER_LEN`] bytes (UTF-8).
    #[error("issuer is longer than {max} bytes")]
    IssuerTooLong {
        /// The limit.
        max: usize,
    },
    /// The account name is longer than [`crate::OtpAuthUri::MAX_ACCOUNT_LEN`] bytes (UTF-8).
    #[error("account name is longer than {max} bytes")]
    AccountTooLong {
        /// The limit.
        max: usize,
    },
    /// No `secret` parameter.
    #[error("otpauth URI has no secret parameter")]
    MissingSecret,
    /// The `secret` parameter is empty.
    #[error("otpauth secret parameter is empty")]
    EmptySecret,
    /// The `secret` parameter is not base32.
    #[error("otpauth secret is not valid base32")]
    InvalidSecret(#[source] Base32Error),
    /// The decoded secret is too short or too long.
    #[error("otpauth secret is unacceptable")]
    Secret(#[source] SecretError),
    /// A known parameter appears more than once.
    #[error("parameter {name:?} appears more than once")]
    DuplicateParameter {
        /// The parameter's name.
        name: &'static str,
    },
    /// `digits`, `period` or `counter` is not a plain decimal number.
    #[error("parameter {name:?} is not a number")]
    NotANumber {
        /// The parameter's name.
        name: &'static str,
    },
    /// `digits`, `period` or `counter` is outside its accepted range.
    #[error("parameter {name:?} must be between {min} and {max}")]
    OutOfRange {
        /// The parameter's name.
        name: &'static str,
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// `algorithm` is not SHA1, SHA256 or SHA512 (any case).
    #[error("unknown algorithm (expected SHA1, SHA256 or SHA512)")]
    UnknownAlgorithm,
    /// A `%` not followed by two hexadecimal digits.
    #[error("invalid percent-encoding at byte {position}")]
    InvalidPercentEncoding {
        /// Byte offset of the `%` in the URI.
        position: usize,
    },
    /// A label or parameter decodes to bytes that are not UTF-8.
    #[error("the {part} is not valid UTF-8 after percent-decoding")]
    InvalidUtf8 {
        /// Which part: `label` or the parameter's name.
        part: &'static str,
    },
    /// The issuer in the label differs from the `issuer` parameter.
    #[error("the issuer in the label contradicts the issuer parameter")]
    IssuerMismatch,
    /// An HOTP URI without the required `counter` parameter.
    #[error("HOTP URI has no counter parameter")]
    MissingCounter,
    /// A TOTP was asked of an HOTP URI, or the reverse.
    #[error("the URI is {actual}, not {expected}")]
    WrongType {
        /// The type asked for.
        expected: &'static str,
        /// The URI's type.
        actual: &'static str,
    },
}

/// Encryption, decryption or key configuration failure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Decryption failed. Deliberately opaque: wrong key, tampered blob, wrong user or purpose all
    /// look the same.
    #[error("decryption failed")]
    Decrypt,
    /// Encryption failed: the plaintext is longer than the cipher accepts, or the cipher's
    /// backend (KMS, HSM) refused.
    #[error("encryption failed")]
    Encrypt,
    /// The key configuration contains no key.
    #[error("key configuration contains no key")]
    EmptyKeyring,
    /// An entry of the key configuration is not `ID:KEY` (entry 0 is the `;current=ID` part).
    #[error("key configuration: entry {entry} is not of the form ID:KEY (or ;current=ID)")]
    ConfigSyntax {
        /// 1-based position of the entry; 0 for the `;current=` part.
        entry: usize,
    },
    /// A key id is not a decimal `u32`.
    #[error("key configuration: entry {entry} has a key id that is not a decimal u32")]
    InvalidKeyId {
        /// 1-based position of the entry.
        entry: usize,
    },
    /// A key is not 32 bytes of hex (64 digits) or base64. The key text is never included.
    #[error("key {key_id}: expected 32 bytes as 64 hex digits or base64")]
    InvalidKey {
        /// Id of the offending key (0 for a single key with no id, such as a pepper).
        key_id: u32,
    },
    /// Two keys share an id.
    #[error("key id {key_id} appears twice in the key configuration")]
    DuplicateKeyId {
        /// The repeated id.
        key_id: u32,
    },
    /// Several keys and no `;current=ID`.
    #[error("key configuration has several keys but no ;current=ID")]
    MissingCurrentKey,
    /// `;current=ID` names a key that is not in the ring.
    #[error("current key id {key_id} is not in the key configuration")]
    UnknownCurrentKey {
        /// The id named as current.
        key_id: u32,
    },
    /// The environment variable holding the key configuration is unset or not UTF-8.
    #[error("environment variable {name} is unset or not valid UTF-8")]
    MissingEnv {
        /// The variable's name.
        name: String,
    },
    /// The environment variable is set, but its value was refused for `reason` (one of the
    /// variants above). Names the variable, never its value.
    #[error("environment variable {name}: {reason}")]
    InvalidEnv {
        /// The variable's name.
        name: String,
        /// Why the value was refused.
        reason: Box<CryptoError>,
    },
}

impl CryptoError {
    pub(crate) fn in_env(name: &str, reason: CryptoError) -> Self {
        Self::InvalidEnv {
            name: name.to_owned(),
            reason: Box::new(reason),
        }
    }
}

/// A QR code could not be rendered.
#[cfg(feature = "qr")]
#[cfg_attr(docsrs, doc(cfg(feature = "qr")))]
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum QrError {
    /// The data does not fit in any QR code version at the chosen error correction level.
    #[error("data too long for a QR code")]
    DataTooLong,
    /// A module size of 0, or one that would make an image wider than 8192 pixels.
    #[error("module size {0} px is out of range (1 to 64, image at most 8192 px wide)")]
    InvalidModuleSize(u32),
    /// The PNG encoder failed.
    #[error("PNG encoding failed")]
    Png(#[source] png::EncodingError),
}

/// A boxed error from a store or cipher implementation, kept as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a service operation (`crate::service::TwoFactor`) failed.
///
/// Wrong, replayed and rate-limited codes are never errors. An `Err` is either the caller's bad
/// input (a user id or account name the service cannot take), an infrastructure failure (after
/// which nobody was let in and nothing was consumed: fail closed), or a broken deployment
/// (configuration, corrupt data). [`ServiceError::kind`] says which, and
/// [`ErrorKind::http_status`] the HTTP status it should become, so an application maps every
/// error without matching variants (new variants keep their kind):
///
/// ```
/// use twofactor::error::{ErrorKind, ServiceError};
///
/// fn status_of(e: &ServiceError) -> u16 {
///     // Log `e` with its source chain first: none of it contains a secret or a code.
///     e.kind().http_status()
/// }
///
/// assert_eq!(status_of(&ServiceError::InvalidUserId), 400);
/// assert_eq!(ServiceError::InvalidUserId.kind(), ErrorKind::Input);
/// let down = ServiceError::CredentialStore("connection refused".into());
/// assert_eq!(status_of(&down), 503);
/// assert!(down.kind().is_retryable());
/// ```
///
/// | Variant | [`ErrorKind`] | HTTP |
/// |---|---|---|
/// | [`InvalidUserId`](Self::InvalidUserId), [`InvalidAccountName`](Self::InvalidAccountName), [`InvalidCredential`](Self::InvalidCredential) | [`Input`](ErrorKind::Input) | 400 |
/// | [`CredentialStore`](Self::CredentialStore), [`EphemeralStore`](Self::EphemeralStore), [`Cipher`](Self::Cipher) | [`Unavailable`](ErrorKind::Unavailable) | 503 |
/// | [`CorruptCredential`](Self::CorruptCredential), [`InvalidConfig`](Self::InvalidConfig) | [`Internal`](ErrorKind::Internal) | 500 |
///
/// The sources are kept for logs; none of them contains a secret or a code. The `Display` of
/// an input error is safe to show to the user; the others are for logs only.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The credential store failed. [`ErrorKind::Unavailable`].
    #[error("credential store failed")]
    CredentialStore(#[source] BoxError),
    /// The ephemeral store (challenges, rate limits) failed. [`ErrorKind::Unavailable`].
    #[error("ephemeral store failed")]
    EphemeralStore(#[source] BoxError),
    /// The secret cipher failed to encrypt or decrypt (wrong key, tampered blob, KMS down).
    /// [`ErrorKind::Unavailable`]: a KMS outage is the common cause; a wrong key shows in the
    /// logged source.
    #[error("secret encryption or decryption failed")]
    Cipher(#[source] BoxError),
    /// The stored credential's parameters or secret are unusable (e.g. digits out of range).
    /// [`ErrorKind::Internal`]: retrying does not help; an operator must look.
    #[error("stored 2FA credential is unusable")]
    CorruptCredential(#[source] BoxError),
    /// The service configuration is invalid (only from the constructors).
    /// [`ErrorKind::Internal`].
    #[error("invalid 2FA service configuration")]
    InvalidConfig(#[source] BoxError),
    /// A user id was empty or longer than `service::MAX_USER_ID_LEN` bytes.
    /// [`ErrorKind::Input`].
    #[error("user id must be 1 to 256 bytes")]
    InvalidUserId,
    /// The account name cannot go into an otpauth URI (empty, longer than
    /// [`crate::OtpAuthUri::MAX_ACCOUNT_LEN`] bytes, or beginning with whitespace).
    /// [`ErrorKind::Input`].
    #[error("invalid account name for the authenticator app")]
    InvalidAccountName(#[source] UriError),
    /// An imported credential's secret or parameters are unacceptable (see
    /// `TwoFactor::import_credential`). [`ErrorKind::Input`].
    #[error("imported 2FA credential is invalid")]
    InvalidCredential(#[source] BoxError),
    /// An authenticator name or a device label is empty (after trimming), longer than 64
    /// characters, or holds control characters. [`ErrorKind::Input`].
    #[error("name must be 1 to 64 characters without control characters")]
    InvalidName,
}

impl ServiceError {
    /// Whose problem this is, and so which HTTP status it should become.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidUserId
            | Self::InvalidAccountName(_)
            | Self::InvalidCredential(_)
            | Self::InvalidName => ErrorKind::Input,
            Self::CredentialStore(_) | Self::EphemeralStore(_) | Self::Cipher(_) => {
                ErrorKind::Unavailable
            }
            Self::CorruptCredential(_) | Self::InvalidConfig(_) => ErrorKind::Internal,
        }
    }

    /// `true` when the caller's input was refused ([`ErrorKind::Input`], HTTP 400).
    #[must_use]
    pub fn is_input(&self) -> bool {
        self.kind() == ErrorKind::Input
    }
}

/// The class of a [`ServiceError`]: what the application should answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller's input was refused (a user id or account name the service cannot take, an
    /// imported secret it cannot use). Answer **400 Bad Request**; the error's `Display` is safe
    /// to show. Retrying the same input fails the same way.
    Input,
    /// A store or the cipher failed: nobody was let in and nothing was consumed. Answer
    /// **503 Service Unavailable** (the request may succeed later) and log the source chain.
    Unavailable,
    /// The deployment is broken: invalid configuration, or stored data the service cannot use.
    /// Answer **500 Internal Server Error** and alert an operator.
    Internal,
}

impl ErrorKind {
    /// The HTTP status code this kind should become: 400, 503 or 500.
    #[must_use]
    pub const fn http_status(self) -> u16 {
        match self {
            Self::Input => 400,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }

    /// Whether the same request may succeed later ([`ErrorKind::Unavailable`]).
    #[must_use]
    pub const fn is_retryable(self) -> bool {
        matches!(self, Self::Unavailable)
    }
}
