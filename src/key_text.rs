//! Key material as text (environment variables, configuration files): what the keyring and the
//! backup-code pepper both read.

use data_encoding::{BASE64, BASE64_NOPAD, BASE64URL, BASE64URL_NOPAD, HEXLOWER_PERMISSIVE};
use zeroize::Zeroizing;

use crate::error::CryptoError;

/// The value of the environment variable `name`, zeroized on drop.
pub(crate) fn read_env(name: &str) -> Result<Zeroizing<String>, CryptoError> {
    std::env::var(name)
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::MissingEnv {
            name: name.to_owned(),
        })
}

/// 32 key bytes from 64 hex digits or base64 (standard or URL-safe, padded or not). The lengths
/// differ (64 versus 43/44 characters), so the two encodings cannot be confused.
pub(crate) fn parse_key(text: &str) -> Option<Zeroizing<[u8; 32]>> {
    let bytes = Zeroizing::new(if text.len() == 64 {
        HEXLOWER_PERMISSIVE.decode(text.as_bytes()).ok()?
    } else {
        let encoding = match (text.contains(['-', '_']), text.ends_with('=')) {
            (false, true) => &BASE64,
            (false, false) => &BASE64_NOPAD,
            (true, true) => &BASE64URL,
            (true, false) => &BASE64URL_NOPAD,
        };
        encoding.decode(text.as_bytes()).ok()?
    });
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != key.len() {
        return None;
    }
    key.copy_from_slice(&bytes);
    Some(key)
}
