//! Encryption of TOTP secrets at rest.
//!
//! A stolen database dump must not hand out every user's TOTP secret, so the secret is stored
//! encrypted by a [`SecretCipher`]. Applications with a KMS or HSM implement the trait over it;
//! everyone else uses the built-in [`Keyring`]: AES-256-GCM over numbered keys, one of them
//! current, loaded from one configuration string (for example an environment variable).
//!
//! # Blob format (version 1, stable)
//!
//! ```text
//! offset  size  field
//! 0       1     version = 0x01
//! 1       4     key id, big-endian u32
//! 5       12    nonce, 96 random bits from the OS CSPRNG
//! 17      n     AES-256-GCM ciphertext (same length as the plaintext)
//! 17+n    16    GCM tag
//! ```
//!
//! The overhead is [`Keyring::OVERHEAD`] = 33 bytes: a 20-byte SHA-1 secret becomes 53 bytes.
//! The GCM associated data is the 5-byte header (version and key id) followed by the caller's
//! associated data, normally [`secret_aad`]`(user_id)`. Binding the user id means a ciphertext
//! copied into another user's row does not decrypt; binding the purpose means a blob encrypted for
//! another purpose under the same keys does not decrypt either. A test pins the exact bytes of a
//! known blob, computed independently with Python's `cryptography` package.
//!
//! # Key rotation without downtime
//!
//! 1. Add the new key to the ring on every instance, still with the old key current.
//! 2. Once every instance has it, make the new key current. New blobs use it; old blobs still
//!    decrypt, and [`Decrypted::stale_key`] tells the caller to rewrite them (the service does so on
//!    the next successful login).
//! 3. When no blob under the old key remains, remove the old key.
//!
//! # Nonce limits
//!
//! Nonces are 96 random bits. NIST SP 800-38D caps random-nonce GCM at 2^32 encryptions per key
//! so that the chance of a repeated nonce stays below 2^-32 (birthday bound: after `q` messages
//! the chance is about q² / 2^97, which is 2^-33 at q = 2^32). A repeated nonce under one key
//! leaks the XOR of two plaintexts and lets an attacker forge tags, so rotate the key well before
//! 2^32 encryptions: one per enrolment plus one per rewrite, so even a site with ten million users
//! re-enrolling every day needs over a year to reach 2^32. Rotate yearly, or sooner if the key may
//! have leaked.

use core::fmt;
use std::future::Future;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use rand::{CryptoRng, Rng};
use zeroize::{Zeroize, Zeroizing};

use crate::error::CryptoError;
use crate::key_text::parse_key;

/// Encrypts and decrypts TOTP secrets with associated data.
///
/// # Security contract for implementors
///
/// - **Authenticated:** `decrypt` must fail for any blob that was not produced by `encrypt` with
///   the same associated data: a flipped bit, a truncated blob, or a blob copied from another
///   user's row (different `aad`) must all fail. Use an AEAD (AES-GCM, ChaCha20-Poly1305, a KMS's
///   encrypt-with-context).
/// - **Opaque failure:** a failed decryption says nothing about why (no "bad tag" versus
///   "unknown key"), and errors never contain plaintext or key material.
/// - **Fresh randomness:** every `encrypt` uses a fresh nonce/IV; the same plaintext encrypted
///   twice gives different blobs.
/// - **Rotation:** `decrypt` accepts blobs under every key the application still holds, and sets
///   [`Decrypted::stale_key`] when the blob was not made with the key `encrypt` uses now, so the
///   caller can rewrite it.
/// - **Fail closed:** an `Err` from either method means nobody logs in with that secret; never
///   fall back to plaintext.
pub trait SecretCipher: Send + Sync {
    /// The error type. For decryption failures it must be opaque.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Encrypts `plaintext`, binding `aad` (see [`secret_aad`]) into the authentication tag.
    fn encrypt(
        &self,
        plaintext: &[u8],
        aad: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, Self::Error>> + Send;

    /// Decrypts a blob made by [`SecretCipher::encrypt`] with the same `aad`.
    fn decrypt(
        &self,
        blob: &[u8],
        aad: &[u8],
    ) -> impl Future<Output = Result<Decrypted, Self::Error>> + Send;
}

/// A decrypted secret.
pub struct Decrypted {
    /// The plaintext, zeroized on drop.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// `true` when the blob was encrypted under a key that is no longer the current one: encrypt
    /// the plaintext again and store the new blob (with the same compare-and-set care as any
    /// other write).
    pub stale_key: bool,
}

impl fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decrypted")
            .field("plaintext", &"[REDACTED]")
            .field("stale_key", &self.stale_key)
            .finish()
    }
}

/// Purpose label bound into the associated data of encrypted TOTP secrets.
pub const SECRET_PURPOSE: &str = "twofactor totp-secret v1";

/// The associated data for a user's encrypted TOTP secret: the purpose
/// ([`SECRET_PURPOSE`]) and the user id, each prefixed by its length as a big-endian u32, so no
/// two different (purpose, user id) pairs give the same bytes.
#[must_use]
pub fn secret_aad(user_id: &str) -> Vec<u8> {
    aad_for(SECRET_PURPOSE, user_id)
}

/// Associated data for any purpose label and user id, in the same length-prefixed encoding as
/// [`secret_aad`]. Use a distinct purpose for anything other than TOTP secrets.
#[must_use]
pub fn aad_for(purpose: &str, user_id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(8 + purpose.len() + user_id.len());
    push_len_prefixed(&mut aad, purpose.as_bytes());
    push_len_prefixed(&mut aad, user_id.as_bytes());
    aad
}

fn push_len_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    // Lengths above u32::MAX saturate; such inputs cannot reach a database row anyway, and the
    // saturated prefix still differs from every shorter input's.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

const VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 4;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Largest plaintext [`Keyring`] encrypts (64 KiB): far above any TOTP secret, and it bounds the
/// work hostile input can cause.
const MAX_PLAINTEXT: usize = 64 * 1024;

/// One AES-256-GCM key with its id. The cipher state (key schedule and GHASH key) is zeroized on
/// drop by `aes-gcm`'s `zeroize` feature.
struct RingKey {
    id: u32,
    cipher: Aes256Gcm,
}

/// Numbered AES-256-GCM keys, one of them current: the built-in [`SecretCipher`].
///
/// Encrypts with the current key; decrypts with whichever key the blob names. Keys are zeroized
/// on drop and never printed (`Debug` shows only the key ids). See the [module docs](self) for
/// the blob format, rotation and nonce limits.
///
/// # Configuration format
///
/// One string, typically an environment variable:
///
/// ```text
/// TWOFACTOR_KEYS="<key>"                         # one key, which is key id 1
/// TWOFACTOR_KEYS="1:<key>,2:<key>;current=2"     # a ring, during a rotation
/// ```
///
/// - A bare key (no `ID:`) is key id 1, so a deployment can start with just
///   `openssl rand -hex 32` and later rotate to `1:<old>,2:<new>;current=2` without re-encrypting
///   anything: blobs name key 1 either way.
/// - Entries are `ID:KEY`, separated by commas. `ID` is a decimal `u32` (unique). `KEY` is 32
///   bytes as 64 hex digits, or as base64 (standard or URL-safe alphabet, padding optional).
/// - `;current=ID` names the key that encrypts. It may be left out only when the ring has one key.
/// - Spaces around entries are ignored. Errors name the entry or key id, never the key.
///
/// Generate a key with `openssl rand -hex 32` or [`Keyring::generate`]. Key rotation (add, make
/// current, drop when unused) is in the [module docs](self#key-rotation-without-downtime); the
/// backup-code pepper is a separate key that must **not** rotate with these (see
/// [`BackupCodeKey`](crate::BackupCodeKey) and the [guide](crate::guide#keys-pepper-and-rotation)).
pub struct Keyring {
    keys: Vec<RingKey>,
    current: usize,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.key_ids())
            .field("current", &self.current_key_id())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// Bytes a blob adds to the plaintext: 1 (version) + 4 (key id) + 12 (nonce) + 16 (tag).
    pub const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

    /// A ring with one key, which is current.
    #[must_use]
    pub fn single(key_id: u32, key: [u8; 32]) -> Self {
        let mut key = Zeroizing::new(key);
        Self {
            keys: vec![RingKey::new(key_id, &mut key)],
            current: 0,
        }
    }

    /// A ring from `(key id, key)` pairs with `current` as the encrypting key.
    ///
    /// # Errors
    /// [`CryptoError::EmptyKeyring`] with no keys, [`CryptoError::DuplicateKeyId`] when an id
    /// repeats, [`CryptoError::UnknownCurrentKey`] when `current` is not among the ids.
    pub fn new(
        keys: impl IntoIterator<Item = (u32, [u8; 32])>,
        current: u32,
    ) -> Result<Self, CryptoError> {
        let mut ring: Vec<RingKey> = Vec::new();
        for (id, key) in keys {
            let mut key = Zeroizing::new(key);
            if ring.iter().any(|k| k.id == id) {
                return Err(CryptoError::DuplicateKeyId { key_id: id });
            }
            ring.push(RingKey::new(id, &mut key));
        }
        if ring.is_empty() {
            return Err(CryptoError::EmptyKeyring);
        }
        let current = ring
            .iter()
            .position(|k| k.id == current)
            .ok_or(CryptoError::UnknownCurrentKey { key_id: current })?;
        Ok(Self {
            keys: ring,
            current,
        })
    }

    /// A fresh random key (id 1) from the OS CSPRNG, and the configuration string that loads it
    /// again with [`Keyring::from_config`]. For demos and first setup: the string contains the
    /// key, so store it as a secret and never log it.
    #[must_use]
    pub fn generate() -> (Self, String) {
        let mut key = Zeroizing::new([0u8; 32]);
        crate::rng::os_rng().fill_bytes(key.as_mut_slice());
        let config = format!("1:{}", data_encoding::HEXLOWER.encode(key.as_slice()));
        (Self::single(1, *key), config)
    }

    /// Loads a ring from the [configuration format](Keyring#configuration-format).
    ///
    /// # Errors
    /// [`CryptoError::EmptyKeyring`], [`CryptoError::ConfigSyntax`],
    /// [`CryptoError::InvalidKeyId`], [`CryptoError::InvalidKey`],
    /// [`CryptoError::DuplicateKeyId`], [`CryptoError::MissingCurrentKey`] or
    /// [`CryptoError::UnknownCurrentKey`]. None of them contains key material.
    pub fn from_config(config: &str) -> Result<Self, CryptoError> {
        let bare = config.trim();
        if !bare.is_empty() && !bare.contains([':', ',', ';']) {
            // Neither hex nor base64 contains these: a bare key, which is key 1.
            let key = parse_key(bare).ok_or(CryptoError::InvalidKey { key_id: 1 })?;
            return Ok(Self::single(1, *key));
        }
        let (entries, current) = match config.split_once(';') {
            Some((entries, rest)) => {
                let rest = rest.trim();
                let value = rest
                    .strip_prefix("current")
                    .map(str::trim_start)
                    .and_then(|r| r.strip_prefix('='))
                    .ok_or(CryptoError::ConfigSyntax { entry: 0 })?;
                let id =
                    parse_key_id(value.trim()).ok_or(CryptoError::ConfigSyntax { entry: 0 })?;
                (entries, Some(id))
            }
            None => (config, None),
        };
        let mut keys: Vec<(u32, Zeroizing<[u8; 32]>)> = Vec::new();
        for (index, entry) in entries.split(',').enumerate() {
            let entry = entry.trim();
            if entry.is_empty() {
                // Tolerate a trailing comma, but an empty ring is reported below.
                continue;
            }
            let (id, key) = entry
                .split_once(':')
                .ok_or(CryptoError::ConfigSyntax { entry: index + 1 })?;
            let id =
                parse_key_id(id.trim()).ok_or(CryptoError::InvalidKeyId { entry: index + 1 })?;
            let key = parse_key(key.trim()).ok_or(CryptoError::InvalidKey { key_id: id })?;
            keys.push((id, key));
        }
        let current = match (current, keys.as_slice()) {
            (_, []) => return Err(CryptoError::EmptyKeyring),
            (Some(id), _) => id,
            (None, [(id, _)]) => *id,
            (None, _) => return Err(CryptoError::MissingCurrentKey),
        };
        Self::new(keys.iter().map(|(id, key)| (*id, **key)), current)
    }

    /// Loads a ring from the environment variable `name`: a bare key (key id 1) or the
    /// [configuration format](Keyring#configuration-format).
    ///
    /// ```
    /// # use twofactor::Keyring;
    /// # // SAFETY of set_var: a doctest is its own single-threaded process.
    /// # unsafe { std::env::set_var("DOC_TWOFACTOR_KEYS", "9f".repeat(32)) };
    /// let keys = Keyring::from_env("DOC_TWOFACTOR_KEYS")?; // e.g. `openssl rand -hex 32`
    /// assert_eq!(keys.key_ids(), [1]);
    /// # unsafe { std::env::set_var("DOC_TWOFACTOR_KEYS", "1:not-a-key") };
    /// let e = Keyring::from_env("DOC_TWOFACTOR_KEYS").unwrap_err();
    /// assert_eq!(
    ///     e.to_string(),
    ///     "environment variable DOC_TWOFACTOR_KEYS: key 1: expected 32 bytes as 64 hex digits or base64"
    /// );
    /// # Ok::<(), twofactor::CryptoError>(())
    /// ```
    ///
    /// # Errors
    /// [`CryptoError::MissingEnv`] when the variable is unset or not UTF-8;
    /// [`CryptoError::InvalidEnv`], naming the variable and wrapping the reason
    /// [`Keyring::from_config`] gives, when its value is refused. Neither contains the value.
    pub fn from_env(name: &str) -> Result<Self, CryptoError> {
        let value = crate::key_text::read_env(name)?;
        Self::from_config(&value).map_err(|e| CryptoError::in_env(name, e))
    }

    /// The id of the key new blobs are encrypted with.
    #[must_use]
    pub fn current_key_id(&self) -> u32 {
        self.keys.get(self.current).map_or(0, |k| k.id)
    }

    /// The ids of all keys in the ring, in configuration order.
    #[must_use]
    pub fn key_ids(&self) -> Vec<u32> {
        self.keys.iter().map(|k| k.id).collect()
    }

    /// Encrypts with the current key and a nonce from the OS CSPRNG (synchronous form of
    /// [`SecretCipher::encrypt`]).
    ///
    /// # Errors
    /// [`CryptoError::Encrypt`] when the plaintext is longer than 64 KiB.
    pub fn encrypt_sync(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.encrypt_with_rng(plaintext, aad, &mut crate::rng::os_rng())
    }

    /// Like [`Keyring::encrypt_sync`], with the nonce drawn from `rng`. For known-answer tests:
    /// in production a nonce must never repeat under one key, so use the OS CSPRNG.
    ///
    /// # Errors
    /// [`CryptoError::Encrypt`] when the plaintext is longer than 64 KiB.
    pub fn encrypt_with_rng<R: CryptoRng + ?Sized>(
        &self,
        plaintext: &[u8],
        aad: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, CryptoError> {
        let key = self.keys.get(self.current).ok_or(CryptoError::Encrypt)?;
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(CryptoError::Encrypt);
        }
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);

        let mut blob = Vec::with_capacity(Self::OVERHEAD + plaintext.len());
        blob.push(VERSION);
        blob.extend_from_slice(&key.id.to_be_bytes());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(plaintext);

        let (head, body) = blob.split_at_mut(HEADER_LEN + NONCE_LEN);
        let full_aad = full_aad(&head[..HEADER_LEN], aad);
        let tag = key
            .cipher
            .encrypt_inout_detached(&Nonce::from(nonce), &full_aad, body.into());
        match tag {
            Ok(tag) => {
                blob.extend_from_slice(tag.as_slice());
                Ok(blob)
            }
            Err(_) => {
                blob.zeroize();
                Err(CryptoError::Encrypt)
            }
        }
    }

    /// Decrypts a blob with whichever ring key it names (synchronous form of
    /// [`SecretCipher::decrypt`]).
    ///
    /// # Errors
    /// [`CryptoError::Decrypt`] for every failure: unknown version or key id, truncated or
    /// tampered blob, wrong associated data. The error says nothing more, by design.
    pub fn decrypt_sync(&self, blob: &[u8], aad: &[u8]) -> Result<Decrypted, CryptoError> {
        if blob.len() < Self::OVERHEAD || blob.len() - Self::OVERHEAD > MAX_PLAINTEXT {
            return Err(CryptoError::Decrypt);
        }
        let (header, rest) = blob.split_at(HEADER_LEN);
        let (nonce, rest) = rest.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        if header[0] != VERSION {
            return Err(CryptoError::Decrypt);
        }
        let key_id = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
        let (index, key) = self
            .keys
            .iter()
            .enumerate()
            .find(|(_, k)| k.id == key_id)
            .ok_or(CryptoError::Decrypt)?;
        let nonce = <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| CryptoError::Decrypt)?;
        let tag = Tag::try_from(tag).map_err(|_| CryptoError::Decrypt)?;
        let full_aad = full_aad(header, aad);
        let mut plaintext = Zeroizing::new(ciphertext.to_vec());
        key.cipher
            .decrypt_inout_detached(
                &Nonce::from(nonce),
                &full_aad,
                plaintext.as_mut_slice().into(),
                &tag,
            )
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(Decrypted {
            plaintext,
            stale_key: index != self.current,
        })
    }
}

impl SecretCipher for Keyring {
    type Error = CryptoError;

    fn encrypt(
        &self,
        plaintext: &[u8],
        aad: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, CryptoError>> + Send {
        std::future::ready(self.encrypt_sync(plaintext, aad))
    }

    fn decrypt(
        &self,
        blob: &[u8],
        aad: &[u8],
    ) -> impl Future<Output = Result<Decrypted, CryptoError>> + Send {
        std::future::ready(self.decrypt_sync(blob, aad))
    }
}

/// Shared ciphers (`Arc<Keyring>` in application state) work wherever a cipher is expected.
impl<T: SecretCipher + ?Sized> SecretCipher for std::sync::Arc<T> {
    type Error = T::Error;

    fn encrypt(
        &self,
        plaintext: &[u8],
        aad: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, T::Error>> + Send {
        (**self).encrypt(plaintext, aad)
    }

    fn decrypt(
        &self,
        blob: &[u8],
        aad: &[u8],
    ) -> impl Future<Output = Result<Decrypted, T::Error>> + Send {
        (**self).decrypt(blob, aad)
    }
}

impl RingKey {
    fn new(id: u32, key: &mut Zeroizing<[u8; 32]>) -> Self {
        let cipher = Aes256Gcm::new(&(**key).into());
        key.zeroize();
        Self { id, cipher }
    }
}

/// GCM associated data: the blob header, then the caller's associated data. Binding the header
/// means the version byte and key id cannot be changed without failing authentication.
fn full_aad(header: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(header.len() + aad.len());
    full.extend_from_slice(header);
    full.extend_from_slice(aad);
    full
}

fn parse_key_id(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}
