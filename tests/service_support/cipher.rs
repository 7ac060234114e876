//! A cipher for adversary tests: counts decryptions (each code evaluation decrypts a secret or a
//! dummy once), and can be told to fail or to stall.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use twofactor::crypto::{Decrypted, SecretCipher};
use twofactor::{CryptoError, Keyring};

use super::KEY1;

#[derive(Clone)]
pub struct Instrumented {
    inner: Arc<Keyring>,
    pub decrypts: Arc<AtomicU64>,
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
            fail: Arc::default(),
            delay_ms: Arc::default(),
        }
    }

    /// Decryptions so far.
    pub fn count(&self) -> u64 {
        self.decrypts.load(Ordering::SeqCst)
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
        self.decrypts.fetch_add(1, Ordering::SeqCst);
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        self.inner.decrypt(blob, aad).await
    }
}
