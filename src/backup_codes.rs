//! Backup codes: the way back in for a user who lost the phone.
//!
//! A set of single-use codes is generated at enrolment (or on request), shown to the user once,
//! and stored only as keyed hashes. Single use is the store's job
//! ([`crate::store::CredentialStore::consume_backup_code`] deletes and returns atomically); this
//! module generates the codes, normalises what people type and computes the hash to look up.
//!
//! # Format and entropy
//!
//! A code is 10 characters of Crockford base32 (`0-9 A-Z` without `I L O U`, 32 symbols, 5 bits
//! each), shown as `XXXXX-XXXXX`. Every generated code contains at least one letter, so it can
//! never be mistaken for an all-digit TOTP code (which may be up to 10 digits long). Codes are
//! drawn uniformly from the 32^10 − 10^10 strings that contain a letter:
//!
//! ```text
//! log2(32^10 − 10^10) = log2(2^50 × (1 − 10^10/2^50)) = 50 + log2(1 − 8.9×10^-6)
//!                     ≈ 50 − 1.3×10^-5 ≈ 49.99999 bits per code
//! ```
//!
//! Requiring a letter costs 0.00001 bits: an attacker's guessing work shrinks by a factor of
//! 1 − 8.9×10^-6. Online, with the service's rate limit in front, the chance that a guess hits
//! one of 8 codes is 8 / 1.1×10^15 ≈ 7×10^-15 per attempt. Offline, a leaked table of hashes is
//! useless without the pepper ([`BackupCodeKey`]), which lives outside the database; even with
//! the pepper, each hash is bound to one user id, so brute force costs 2^50 HMACs per user.
//! The 8 hex characters (32 bits) many tutorials use fall to about 4×10^9 HMACs.
//!
//! # Typing
//!
//! [`normalize`] accepts any case, spaces and hyphens anywhere (including the Unicode dashes
//! phone keyboards substitute), and the look-alikes Crockford maps: `O → 0`, `I → 1`, `L → 1`.
//! `U` is not a Crockford symbol and is refused.
//!
//! Never log a code, typed or generated.

use core::fmt;

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use rand::CryptoRng;
use sha2::Sha256;
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::{Zeroize, Zeroizing};

use crate::error::CryptoError;

/// A keyed hash of a backup code (HMAC-SHA256, bound to the user id). What a store keeps instead
/// of the code.
pub type BackupCodeHash = [u8; 32];

/// Number of codes in a set when the application does not choose: 8.
pub const DEFAULT_COUNT: usize = 8;

/// Characters in a code, without the display hyphen.
pub const CODE_LEN: usize = 10;

/// Crockford base32: digits, then letters without I, L, O, U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Longest input [`normalize`] looks at; longer input is not a backup code. Bounds the work done
/// on hostile input.
const MAX_TYPED_LEN: usize = 64;

/// HKDF info label for [`BackupCodeKey::derive`]; distinct from every other use of a master key.
pub const PEPPER_LABEL: &[u8] = b"twofactor backup-code pepper v1";

/// A plaintext backup code, shown to the user once.
///
/// Zeroized on drop; `Debug` prints `[REDACTED]`; there is no `Display`. Read it with
/// [`BackupCode::as_str`] only to show it to its owner, then drop it. Store
/// [`BackupCodeKey::hash`] instead. There is no `PartialEq`: compare hashes, in constant time,
/// with [`BackupCodeKey::verify`].
#[derive(Clone)]
pub struct BackupCode {
    /// Display form `XXXXX-XXXXX`.
    display: Zeroizing<String>,
}

impl BackupCode {
    /// The code as shown to the user: `XXXXX-XXXXX`, upper case. Never log it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The 10 canonical characters (display form without the hyphen).
    fn canonical(&self) -> impl Iterator<Item = u8> + '_ {
        self.display.bytes().filter(|&b| b != b'-')
    }

    fn from_symbols(symbols: &[u8; CODE_LEN]) -> Self {
        let mut display = Zeroizing::new(String::with_capacity(CODE_LEN + 1));
        for (i, &s) in symbols.iter().enumerate() {
            if i == CODE_LEN / 2 {
                display.push('-');
            }
            display.push(char::from(ALPHABET[usize::from(s & 31)]));
        }
        Self { display }
    }
}

impl fmt::Debug for BackupCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BackupCode([REDACTED])")
    }
}

/// Generates `count` distinct codes from the OS CSPRNG. Replace the user's whole set with their
/// hashes (old codes void) and show the codes once.
#[must_use]
pub fn generate(count: usize) -> Vec<BackupCode> {
    generate_with_rng(count, &mut crate::rng::os_rng())
}

/// Like [`generate`], with the random number generator injected (tests, HSM-backed RNGs).
///
/// Each symbol takes the low 5 bits of a random byte (256 is a multiple of 32, so this is
/// uniform). An all-digit draw, or one equal to a code already in the set, is thrown away and
/// drawn again, which keeps the result uniform over the distinct codes that contain a letter.
#[must_use]
pub fn generate_with_rng<R: CryptoRng + ?Sized>(count: usize, rng: &mut R) -> Vec<BackupCode> {
    let mut codes = Vec::with_capacity(count);
    // Sorted 50-bit values of the codes so far, for the uniqueness check; zeroized on drop.
    let mut seen: Zeroizing<Vec<u64>> = Zeroizing::new(Vec::with_capacity(count));
    let mut symbols = Zeroizing::new([0u8; CODE_LEN]);
    while codes.len() < count {
        rng.fill_bytes(symbols.as_mut_slice());
        let mut value = 0u64;
        let mut has_letter = false;
        for s in symbols.iter_mut() {
            *s &= 31;
            has_letter |= *s >= 10;
            value = (value << 5) | u64::from(*s);
        }
        if !has_letter {
            continue;
        }
        let duplicate = match seen.binary_search(&value) {
            Ok(_) => true,
            Err(at) => {
                seen.insert(at, value);
                false
            }
        };
        value.zeroize();
        if duplicate {
            continue;
        }
        codes.push(BackupCode::from_symbols(&symbols));
    }
    codes
}

/// The canonical form of a typed code: 10 upper-case Crockford characters, no separators.
///
/// Ignores case, whitespace and hyphens (also `‐ ‑ ‒ – — −`), and maps `O → 0`, `I → 1`,
/// `L → 1`. Returns `None` when the input is not backup-code shaped: a character outside the
/// alphabet (including `U`), not exactly 10 characters, or no letter at all (every generated code
/// has one, so an all-digit input is a TOTP code, never a backup code).
#[must_use]
pub fn normalize(typed: &str) -> Option<Zeroizing<String>> {
    let mut canonical = Zeroizing::new([0u8; CODE_LEN]);
    if !canonical_into(typed, &mut canonical) {
        return None;
    }
    let mut out = Zeroizing::new(String::with_capacity(CODE_LEN));
    out.extend(canonical.iter().map(|&b| char::from(b)));
    Some(out)
}

/// Whether `typed` has the shape of a backup code (see [`normalize`]) rather than a TOTP code.
/// Use it to route one login field to the right check; it says nothing about validity.
///
/// Allocates nothing: every code check calls it, including the ones a rate limit refuses.
#[must_use]
pub fn looks_like_backup_code(typed: &str) -> bool {
    canonical_into(typed, &mut Zeroizing::new([0u8; CODE_LEN]))
}

/// The canonical value of each ASCII byte (upper case, `O → 0`, `I`/`L → 1`), or 0 when it is
/// not in the alphabet. A table, not a search: this runs on every code check.
const CANONICAL: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut i = 0;
    while i < ALPHABET.len() {
        let c = ALPHABET[i];
        table[c as usize] = c;
        table[c.to_ascii_lowercase() as usize] = c;
        i += 1;
    }
    table[b'O' as usize] = b'0';
    table[b'o' as usize] = b'0';
    table[b'I' as usize] = b'1';
    table[b'i' as usize] = b'1';
    table[b'L' as usize] = b'1';
    table[b'l' as usize] = b'1';
    table
};

/// Writes the canonical form of `typed` into `out`; `false` when it is not backup-code shaped
/// (see [`normalize`]), in which case `out` holds a prefix to be discarded.
fn canonical_into(typed: &str, out: &mut [u8; CODE_LEN]) -> bool {
    // Ten characters take at least ten bytes: a 6-digit TOTP code is answered here.
    if typed.len() > MAX_TYPED_LEN || typed.len() < CODE_LEN {
        return false;
    }
    let mut len = 0;
    let mut has_letter = false;
    for c in typed.chars() {
        if c.is_whitespace() || matches!(c, '-' | '‐' | '‑' | '‒' | '–' | '—' | '−') {
            continue;
        }
        let Some(&canonical) = u8::try_from(c)
            .ok()
            .and_then(|b| CANONICAL.get(usize::from(b)))
        else {
            return false;
        };
        if canonical == 0 || len == CODE_LEN {
            return false;
        }
        has_letter |= canonical.is_ascii_alphabetic();
        out[len] = canonical;
        len += 1;
    }
    len == CODE_LEN && has_letter
}

/// The pepper: the HMAC key for backup-code hashes. Keep it outside the database (configuration,
/// KMS): with it out of reach, a leaked table of hashes cannot be brute-forced.
///
/// Zeroized on drop; `Debug` prints `[REDACTED]`.
///
/// # The pepper must outlive key rotation
///
/// A stored hash can only be checked with the pepper it was made with, and there is no way to
/// re-hash a code nobody knows. Changing the pepper therefore voids every stored backup code at
/// once, silently: users find out the day they lost their phone. So:
///
/// - Give the pepper its own variable ([`BackupCodeKey::from_env`], e.g.
///   `TWOFACTOR_BACKUP_PEPPER="$(openssl rand -hex 32)"`) and **never rotate it** with the
///   [`Keyring`](crate::crypto::Keyring) keys. Rotating the encryption keys is routine; the pepper
///   stays.
/// - [`BackupCodeKey::derive`] from a master key is fine only for a key that never changes. Do
///   not derive it from the current `Keyring` key: the first rotation would void every code.
/// - If the pepper leaks, it is not enough to change it: every user must regenerate their codes
///   ([`TwoFactor::regenerate_backup_codes`](crate::TwoFactor::regenerate_backup_codes)), so
///   plan a forced regeneration rather than a swap.
///
/// See the [guide](crate::guide#keys-pepper-and-rotation) for the whole key set-up.
#[derive(Clone)]
pub struct BackupCodeKey {
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for BackupCodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BackupCodeKey([REDACTED])")
    }
}

impl BackupCodeKey {
    /// Uses 32 bytes as the pepper directly. They must be random (e.g. `openssl rand -hex 32`).
    #[must_use]
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self {
            key: Zeroizing::new(key),
        }
    }

    /// Loads the pepper from 64 hex digits or base64 (as a [`crate::crypto::Keyring`] key).
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] (with `key_id` 0) when the text is not 32 bytes of hex or
    /// base64. The error never contains the text.
    pub fn from_config(text: &str) -> Result<Self, CryptoError> {
        let key =
            crate::key_text::parse_key(text.trim()).ok_or(CryptoError::InvalidKey { key_id: 0 })?;
        Ok(Self { key })
    }

    /// Loads the pepper from the environment variable `name`: 32 bytes as 64 hex digits or
    /// base64, the same forms as a bare [`Keyring`](crate::crypto::Keyring) key. See the
    /// [rotation rule](BackupCodeKey#the-pepper-must-outlive-key-rotation).
    ///
    /// ```
    /// # use twofactor::BackupCodeKey;
    /// # // SAFETY of set_var: a doctest is its own single-threaded process.
    /// # unsafe { std::env::set_var("DOC_TWOFACTOR_BACKUP_PEPPER", "3c".repeat(32)) };
    /// let pepper = BackupCodeKey::from_env("DOC_TWOFACTOR_BACKUP_PEPPER")?;
    /// # unsafe { std::env::set_var("DOC_TWOFACTOR_BACKUP_PEPPER", "1:3c3c") };
    /// let e = BackupCodeKey::from_env("DOC_TWOFACTOR_BACKUP_PEPPER").unwrap_err();
    /// assert!(e.to_string().starts_with("environment variable DOC_TWOFACTOR_BACKUP_PEPPER: "));
    /// # Ok::<(), twofactor::CryptoError>(())
    /// ```
    ///
    /// # Errors
    /// [`CryptoError::MissingEnv`] when the variable is unset or not UTF-8;
    /// [`CryptoError::InvalidEnv`] (naming the variable, wrapping [`CryptoError::InvalidKey`])
    /// when its value is not a 32-byte key. Neither contains the value.
    pub fn from_env(name: &str) -> Result<Self, CryptoError> {
        let value = crate::key_text::read_env(name)?;
        Self::from_config(&value).map_err(|e| CryptoError::in_env(name, e))
    }

    /// Derives the pepper from a master key with HKDF-SHA256 (RFC 5869, no salt, info
    /// [`PEPPER_LABEL`]), so one master secret can feed several independent keys. The master key
    /// must itself be at least 32 random bytes.
    #[must_use]
    pub fn derive(master_key: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(None, master_key);
        let mut key = Zeroizing::new([0u8; 32]);
        // HKDF-Expand fails only for outputs longer than 255 × 32 bytes; 32 bytes cannot fail.
        let _infallible = hk.expand(PEPPER_LABEL, key.as_mut_slice());
        Self { key }
    }

    /// The hash to store for a generated code.
    ///
    /// HMAC-SHA256 keyed with the pepper over `len(user_id) as u64 BE || user_id || code` (the 10
    /// canonical characters), so a hash copied to another user's row never matches.
    #[must_use]
    pub fn hash(&self, user_id: &str, code: &BackupCode) -> BackupCodeHash {
        let mut canonical = Zeroizing::new([0u8; CODE_LEN]);
        for (dst, src) in canonical.iter_mut().zip(code.canonical()) {
            *dst = src;
        }
        self.hash_canonical(user_id, canonical.as_slice())
    }

    /// Normalises a typed code (see [`normalize`]) and hashes it like [`BackupCodeKey::hash`]:
    /// the value to pass to `consume_backup_code`. `None` when the input is not a backup code.
    #[must_use]
    pub fn hash_input(&self, user_id: &str, typed: &str) -> Option<BackupCodeHash> {
        let mut canonical = Zeroizing::new([0u8; CODE_LEN]);
        canonical_into(typed, &mut canonical)
            .then(|| self.hash_canonical(user_id, canonical.as_slice()))
    }

    /// Finds a typed code among a user's stored hashes, returning its index.
    ///
    /// Compares against every stored hash in constant time, without stopping at a match, so the
    /// timing reveals neither whether nor where the code matched. Returns `None` for a wrong code
    /// and for input that is not backup-code shaped. With a store, prefer
    /// `consume_backup_code(user, &key.hash_input(..)?)`, which also makes the use single.
    #[must_use]
    pub fn verify(&self, user_id: &str, typed: &str, stored: &[BackupCodeHash]) -> Option<usize> {
        let hash = self.hash_input(user_id, typed)?;
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, candidate) in stored.iter().enumerate() {
            let hit = candidate.ct_eq(&hash);
            index.conditional_assign(&(i as u64), hit);
            found |= hit;
        }
        if bool::from(found) {
            usize::try_from(index).ok()
        } else {
            None
        }
    }

    fn hash_canonical(&self, user_id: &str, canonical: &[u8]) -> BackupCodeHash {
        // HMAC accepts keys of any length, so keying cannot fail; the fallback is unreachable
        // but keeps the path panic-free.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.key.as_slice())
            .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
        mac.update(&(user_id.len() as u64).to_be_bytes());
        mac.update(user_id.as_bytes());
        mac.update(canonical);
        mac.finalize().into_bytes().into()
    }
}
