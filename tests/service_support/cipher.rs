//! A cipher for adversary tests: counts the decryptions of users' secrets (each one a candidate
//! a code is compared with) apart from the service's dummy work (the padding to the maximum of
//! authenticators, and the stand-in secret of a user without 2FA), and can be told to fail or to
//! stall.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use twofactor::crypto::{Decrypted, SecretCipher};
use twofactor::{CryptoError, Keyring};

use super::KEY1;

#[derive(Clone)]
pub struct Instrumented {
    inner: Arc<Keyring>,
    /// Decryptions of users' secrets.
    pub decrypts: Arc<AtomicU64>,
    /// Decryptions of the service's dummy blob (associated data of the stand-in id).
    pub padding: Arc<AtomicU64>,
    /// While set, encryption and decryption fail.
    pub fail: Arc<AtomicBool>,
    /// While non-zero, decryptions wait this many milliseconds (to open race windows).
    pub delay_ms: Arc<AtomicU64>,
}

impl Instrumented {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Keyring::single(1, KEY1)),
            decrypts: Arc::default(),
            padding: Arc::default(),
            fail: Arc::default(),
            delay_ms: Arc::default(),
        }
    }

    /// Decryptions of users' secrets so far: the candidates compared.
    pub fn count(&self) -> u64 {
        self.decrypts.load(Ordering::SeqCst)
    }

    /// Decryptions of the dummy blob so far.
    pub fn padding(&self) -> u64 {
        self.padding.load(Ordering::SeqCst)
    }
}

impl SecretCipher for Instrumented {
    type Error = CryptoError;

    async fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(CryptoError::Decrypt);
        }
        self.inner.encrypt(plaintext, aad).await
    }

    async fn decrypt(&self, blob: &[u8], aad: &[u8]) -> Result<Decrypted, CryptoError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(CryptoError::Decrypt);
        }
        if is_dummy(aad) {
            self.padding.fetch_add(1, Ordering::SeqCst);
        } else {
            self.decrypts.fetch_add(1, Ordering::SeqCst);
        }
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        self.inner.decrypt(blob, aad).await
    }
}

/// Whether `aad` (`len ‖ purpose ‖ len ‖ user id`, see `crypto::aad_for`) is for the service's
/// stand-in user id of dummy work: `dummy` then hyphens, cut to the real id's length.
fn is_dummy(aad: &[u8]) -> bool {
    let Some(purpose_len) = aad
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    else {
        return false;
    };
    let Some(id) = aad.get(8 + purpose_len as usize..) else {
        return false;
    };
    let stand_in = b"dummy".iter().chain(std::iter::repeat(&b'-'));
    !id.is_empty() && id.iter().zip(stand_in).all(|(a, b)| a == b)
}
