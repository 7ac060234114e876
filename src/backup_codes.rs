//! Backup codes: the way back in for a user who lost the phone.
//!
//! A set of single-use codes is generated at enrolment (or on request), shown to the user once,
//! and stored only as keyed hashes. Single use is the store's job
//! ([`crate::store::CredentialStore::consume_backup_code`] deletes and returns atomically); this
//! module generates the codes, normalises what people type and computes the hash to look up.
//!
//! # Format and entropy
//!
//! A code is 12 characters of Crockford base32 (`0-9 A-Z` without `I L O U`, 32 symbols, 5 bits
//! each), shown as `XXXX-XXXX-XXXX`: 11 random symbols and a **check symbol**. Every generated
//! code has a letter among its random symbols, so it can never be mistaken for an all-digit
//! TOTP code. The random part is drawn uniformly from the 32^11 − 10^11 strings that contain a
//! letter:
//!
//! ```text
//! log2(32^11 − 10^11) = 55 + log2(1 − 10^11/2^55) ≈ 55 − 4.0×10^-6 ≈ 54.999996 bits per code
//! ```
//!
//! Online, with the service's rate limit in front, the chance that a guess hits one of 8 codes
//! is 8 / 3.6×10^16 ≈ 2×10^-16 per attempt.
//!
//! # The check symbol
//!
//! The 12th symbol is `c = Σ xᵢ·α^(12−i)` over GF(32) (`α` a root of `x⁵ + x² + 1`) of the 11
//! random symbols `x₁…x₁₁`. Every position has its own non-zero weight, so one wrong symbol
//! always changes `c`; neighbours' weights differ by the factor `α`, so swapping two different
//! neighbours does too, and swapping `x₁₁` with `c` goes unnoticed only when the two are equal
//! (no typo at all). [`normalize`] refuses a code that fails it, so the service answers "not a
//! code, check it" before any lookup and no attempt is spent. Measured over every such typo of
//! 2,000 codes (`tests/crypto.rs`): 744,000 of 744,000 substitutions and 21,284 of 21,284
//! adjacent swaps caught.
//!
//! Codes of the first format (10 symbols, `XXXXX-XXXXX`, 49.99999 bits, no check symbol) are
//! still accepted, so sets issued before keep working until they are regenerated. Offline, a leaked table of hashes is
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

/// Characters in a code, without the display hyphens: 11 random symbols and a check symbol.
pub const CODE_LEN: usize = 12;

/// Characters in a code of the first format (10 random symbols, no check symbol), still
/// accepted.
pub const LEGACY_CODE_LEN: usize = 10;

/// Random symbols in a code.
const RANDOM_LEN: usize = CODE_LEN - 1;

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
    /// Display form `XXXX-XXXX-XXXX`.
    display: Zeroizing<String>,
}

impl BackupCode {
    /// The code as shown to the user: `XXXX-XXXX-XXXX`, upper case. Never log it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The 12 canonical characters (display form without the hyphens).
    fn canonical(&self) -> impl Iterator<Item = u8> + '_ {
        self.display.bytes().filter(|&b| b != b'-')
    }

    /// The code of 11 random symbol values (0..32), with its check symbol.
    fn from_random(random: &[u8; RANDOM_LEN]) -> Self {
        let mut display = Zeroizing::new(String::with_capacity(CODE_LEN + 2));
        let check = check_symbol(random.iter().copied());
        for (i, s) in random.iter().copied().chain([check]).enumerate() {
            if i > 0 && i % 4 == 0 {
                display.push('-');
            }
            display.push(char::from(ALPHABET[usize::from(s & 31)]));
        }
        Self { display }
    }
}

/// Multiplies by `α` in GF(32) = GF(2)[x] / (x⁵ + x² + 1), without a branch on the value.
const fn times_alpha(v: u8) -> u8 {
    let high = (v >> 4) & 1;
    ((v << 1) & 31) ^ (high * 0b00101)
}

/// The check symbol (a value 0..32) of the random symbol values: `Σ xᵢ·α^(n+1−i)` by Horner's
/// rule, so every position has its own non-zero weight and neighbours' weights differ.
fn check_symbol(random: impl Iterator<Item = u8>) -> u8 {
    random.fold(0, |c, x| times_alpha(c ^ (x & 31)))
}

/// The value (0..32) of each canonical character, for the check symbol.
const VALUE: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

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
    // Sorted 55-bit values of the codes so far, for the uniqueness check; zeroized on drop.
    let mut seen: Zeroizing<Vec<u64>> = Zeroizing::new(Vec::with_capacity(count));
    let mut symbols = Zeroizing::new([0u8; RANDOM_LEN]);
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
        codes.push(BackupCode::from_random(&symbols));
    }
    codes
}

/// The canonical form of a typed code: 12 (or, for a code of the first format, 10) upper-case
/// Crockford characters, no separators.
///
/// Ignores case, whitespace and hyphens (also `‐ ‑ ‒ – — −`), and maps `O → 0`, `I → 1`,
/// `L → 1`. Returns `None` when the input is not a backup code: a character outside the
/// alphabet (including `U`), not 12 or 10 characters, no letter at all (every generated code
/// has one, so an all-digit input is a TOTP code, never a backup code), or, for 12 characters,
/// a check symbol that does not match (a typo: see [the check symbol](self#the-check-symbol)).
#[must_use]
pub fn normalize(typed: &str) -> Option<Zeroizing<String>> {
    let mut canonical = Zeroizing::new([0u8; CODE_LEN]);
    let len = canonical_into(typed, &mut canonical);
    if len == 0 {
        return None;
    }
    let mut out = Zeroizing::new(String::with_capacity(len));
    out.extend(canonical[..len].iter().map(|&b| char::from(b)));
    Some(out)
}

/// Whether `typed` has the shape of a backup code (see [`normalize`]) rather than a TOTP code.
/// Use it to route one login field to the right check; it says nothing about validity.
///
/// Allocates nothing: every code check calls it, including the ones a rate limit refuses.
#[must_use]
pub fn looks_like_backup_code(typed: &str) -> bool {
    canonical_into(typed, &mut Zeroizing::new([0u8; CODE_LEN])) != 0
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

/// Writes the canonical form of `typed` into `out` and returns its length (12, or 10 for the
/// first format); 0 when it is not a backup code (see [`normalize`]), in which case `out` holds
/// a prefix to be discarded.
fn canonical_into(typed: &str, out: &mut [u8; CODE_LEN]) -> usize {
    // Ten characters take at least ten bytes: a 6-digit TOTP code is answered here.
    if typed.len() > MAX_TYPED_LEN || typed.len() < LEGACY_CODE_LEN {
        return 0;
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
            return 0;
        };
        if canonical == 0 || len == CODE_LEN {
            return 0;
        }
        has_letter |= canonical.is_ascii_alphabetic();
        out[len] = canonical;
        len += 1;
    }
    let shaped = match len {
        LEGACY_CODE_LEN => has_letter,
        CODE_LEN => {
            let value = |b: u8| VALUE[usize::from(b & 127)];
            let check = check_symbol(out[..RANDOM_LEN].iter().map(|&b| value(b)));
            // The check symbol may be the only letter; the random part has one by generation.
            has_letter && bool::from(check.ct_eq(&value(out[RANDOM_LEN])))
        }
        _ => false,
    };
    if shaped { len } else { 0 }
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
    /// HMAC-SHA256 keyed with the pepper over `len(user_id) as u64 BE || user_id || code` (the 12
    /// canonical characters; 10 for a code of the first format), so a hash copied to another
    /// user's row never matches.
    #[must_use]
    pub fn hash(&self, user_id: &str, code: &BackupCode) -> BackupCodeHash {
        let mut canonical = Zeroizing::new([0u8; CODE_LEN]);
        let mut len = 0;
        for (dst, src) in canonical.iter_mut().zip(code.canonical()) {
            *dst = src;
            len += 1;
        }
        self.hash_canonical(user_id, &canonical[..len])
    }

    /// Normalises a typed code (see [`normalize`]) and hashes it like [`BackupCodeKey::hash`]:
    /// the value to pass to `consume_backup_code`. `None` when the input is not a backup code.
    #[must_use]
    pub fn hash_input(&self, user_id: &str, typed: &str) -> Option<BackupCodeHash> {
        let mut canonical = Zeroizing::new([0u8; CODE_LEN]);
        let len = canonical_into(typed, &mut canonical);
        (len != 0).then(|| self.hash_canonical(user_id, &canonical[..len]))
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
