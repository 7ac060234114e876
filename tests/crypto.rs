//! Encryption at rest (`twofactor::crypto`) and backup codes (`twofactor::backup_codes`).
//!
//! Known-answer values come from `tests/data/crypto_kat.py`, which computes them with Python's
//! `cryptography` package, independently of this crate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::convert::Infallible;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{SeedableRng, TryCryptoRng, TryRng};
use twofactor::backup_codes::{self, BackupCodeKey, normalize};
use twofactor::crypto::{SECRET_PURPOSE, aad_for, secret_aad};
use twofactor::{CryptoError, Keyring, SecretCipher};

/// Replays fixed bytes, then zeros: injects a known nonce or known code symbols.
struct FixedRng {
    bytes: Vec<u8>,
    pos: usize,
}

impl FixedRng {
    fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            bytes: bytes.into(),
            pos: 0,
        }
    }
}

impl TryRng for FixedRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for d in dst {
            *d = self.bytes.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
        }
        Ok(())
    }
}

impl TryCryptoRng for FixedRng {}

fn hex(s: &str) -> Vec<u8> {
    data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap()
}

const KAT_KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const KAT_NONCE: [u8; 12] = [
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab,
];
const KAT_PLAINTEXT: &[u8] = b"12345678901234567890";
const KAT_USER: &str = "alice@example.com";
/// version 01 | key id 00000007 | nonce a0..ab | ciphertext (20) | tag (16).
const KAT_BLOB_HEX: &str = "0100000007a0a1a2a3a4a5a6a7a8a9aaab\
d72a4f1970fd35875b55b6e1344ef5e8479460209ab36de1b19a226b556966b9d9427356";
const KAT_PEPPER_HEX: &str = "9679cb01d9cad233b716836db85b4311cc33add8e04237896f4682a72b1ea9a5";
/// HMAC-SHA256(pepper, u64be(len(user)) || user || "ABCDE12345").
const KAT_HASH_HEX: &str = "212cf2f69691dae13c17ae4b5faa7653e155543b76da5e18eab167d2c228c733";

fn kat_key() -> [u8; 32] {
    hex(KAT_KEY_HEX).try_into().unwrap()
}

fn key(n: u8) -> [u8; 32] {
    [n; 32]
}

// ---------------------------------------------------------------------------------------------
// Known answers

#[test]
fn known_answer_blob() {
    let ring = Keyring::single(7, kat_key());
    let blob = ring
        .encrypt_with_rng(
            KAT_PLAINTEXT,
            &secret_aad(KAT_USER),
            &mut FixedRng::new(KAT_NONCE),
        )
        .unwrap();
    assert_eq!(data_encoding::HEXLOWER.encode(&blob), KAT_BLOB_HEX);
    assert_eq!(blob.len(), KAT_PLAINTEXT.len() + Keyring::OVERHEAD);

    let opened = ring
        .decrypt_sync(&hex(KAT_BLOB_HEX), &secret_aad(KAT_USER))
        .unwrap();
    assert_eq!(opened.plaintext.as_slice(), KAT_PLAINTEXT);
    assert!(!opened.stale_key);
}

#[test]
fn known_answer_aad_encoding() {
    let mut expected = Vec::new();
    expected.extend_from_slice(&24u32.to_be_bytes());
    expected.extend_from_slice(b"twofactor totp-secret v1");
    expected.extend_from_slice(&17u32.to_be_bytes());
    expected.extend_from_slice(b"alice@example.com");
    assert_eq!(secret_aad(KAT_USER), expected);
    assert_eq!(aad_for(SECRET_PURPOSE, KAT_USER), expected);
}

#[test]
fn known_answer_pepper_and_hash() {
    let expected: [u8; 32] = hex(KAT_HASH_HEX).try_into().unwrap();
    let derived = BackupCodeKey::derive(&kat_key());
    assert_eq!(derived.hash_input(KAT_USER, "abcde-12345"), Some(expected));
    let direct = BackupCodeKey::from_bytes(hex(KAT_PEPPER_HEX).try_into().unwrap());
    assert_eq!(direct.hash_input(KAT_USER, "ABCDE12345"), Some(expected));
    let from_config = BackupCodeKey::from_config(KAT_PEPPER_HEX).unwrap();
    assert_eq!(
        from_config.hash_input(KAT_USER, "ABCDE12345"),
        Some(expected)
    );
}

// ---------------------------------------------------------------------------------------------
// Keyring behaviour

#[tokio::test]
async fn trait_round_trip_and_fresh_nonces() {
    let ring = Keyring::single(1, key(1));
    let aad = secret_aad("bob");
    let a = ring.encrypt(b"secret", &aad).await.unwrap();
    let b = ring.encrypt(b"secret", &aad).await.unwrap();
    assert_ne!(a, b, "same plaintext must give different blobs");
    let opened = ring.decrypt(&a, &aad).await.unwrap();
    assert_eq!(opened.plaintext.as_slice(), b"secret");
    assert!(!opened.stale_key);

    // Shared in application state behind an Arc, and usable from a spawned (Send) task.
    let shared = std::sync::Arc::new(ring);
    let task = {
        let shared = std::sync::Arc::clone(&shared);
        tokio::spawn(async move { shared.encrypt(b"spawned", &secret_aad("bob")).await })
    };
    let blob = task.await.unwrap().unwrap();
    let opened = shared.decrypt(&blob, &aad).await.unwrap();
    assert_eq!(opened.plaintext.as_slice(), b"spawned");
    assert_eq!(
        shared.decrypt(&a, b"").await.unwrap_err(),
        CryptoError::Decrypt
    );
}

#[test]
fn rotation_reports_stale_keys() {
    let old = Keyring::single(1, key(1));
    let blob = old.encrypt_sync(b"secret", &secret_aad("u")).unwrap();

    let rotated = Keyring::new([(1, key(1)), (2, key(2))], 2).unwrap();
    let opened = rotated.decrypt_sync(&blob, &secret_aad("u")).unwrap();
    assert_eq!(opened.plaintext.as_slice(), b"secret");
    assert!(opened.stale_key);

    let rewritten = rotated
        .encrypt_sync(&opened.plaintext, &secret_aad("u"))
        .unwrap();
    assert_eq!(&rewritten[1..5], &2u32.to_be_bytes());
    assert!(
        !rotated
            .decrypt_sync(&rewritten, &secret_aad("u"))
            .unwrap()
            .stale_key
    );

    // Staged rollout: the new key is known but not yet current.
    let staged = Keyring::new([(1, key(1)), (2, key(2))], 1).unwrap();
    assert!(
        staged
            .decrypt_sync(&rewritten, &secret_aad("u"))
            .unwrap()
            .stale_key
    );
    assert!(
        !staged
            .decrypt_sync(&blob, &secret_aad("u"))
            .unwrap()
            .stale_key
    );

    // After the old key is removed, old blobs fail (opaquely).
    let new_only = Keyring::single(2, key(2));
    assert_eq!(
        new_only.decrypt_sync(&blob, &secret_aad("u")).unwrap_err(),
        CryptoError::Decrypt
    );
}

#[test]
fn same_key_under_another_id_does_not_decrypt() {
    let blob = Keyring::single(1, key(1))
        .encrypt_sync(b"secret", &secret_aad("u"))
        .unwrap();
    // The header is authenticated, so relabelling the key id fails even with the same key bytes.
    let ring = Keyring::new([(1, key(9)), (5, key(1))], 5).unwrap();
    let mut relabelled = blob.clone();
    relabelled[1..5].copy_from_slice(&5u32.to_be_bytes());
    assert_eq!(
        ring.decrypt_sync(&relabelled, &secret_aad("u"))
            .unwrap_err(),
        CryptoError::Decrypt
    );
}

#[test]
fn rejects_oversized_plaintext_and_blob() {
    let ring = Keyring::single(1, key(1));
    let big = vec![0u8; 64 * 1024 + 1];
    assert_eq!(
        ring.encrypt_sync(&big, b"").unwrap_err(),
        CryptoError::Encrypt
    );
    assert!(ring.encrypt_sync(&big[1..], b"").is_ok());
    let mut blob = vec![1, 0, 0, 0, 1];
    blob.resize(64 * 1024 + 34, 0);
    assert_eq!(
        ring.decrypt_sync(&blob, b"").unwrap_err(),
        CryptoError::Decrypt
    );
}

#[test]
fn empty_plaintext_round_trips() {
    let ring = Keyring::single(3, key(3));
    let blob = ring.encrypt_sync(b"", b"aad").unwrap();
    assert_eq!(blob.len(), Keyring::OVERHEAD);
    assert!(
        ring.decrypt_sync(&blob, b"aad")
            .unwrap()
            .plaintext
            .is_empty()
    );
}

#[test]
fn generated_ring_reloads_from_its_config() {
    let (ring, config) = Keyring::generate();
    let blob = ring.encrypt_sync(b"secret", &secret_aad("u")).unwrap();
    let again = Keyring::from_config(&config).unwrap();
    assert_eq!(again.current_key_id(), 1);
    assert_eq!(
        again
            .decrypt_sync(&blob, &secret_aad("u"))
            .unwrap()
            .plaintext
            .as_slice(),
        b"secret"
    );
    assert_ne!(Keyring::generate().1, config, "each call makes a new key");
}

#[test]
fn config_accepts_hex_and_base64_forms() {
    let k = kat_key();
    let std_pad = data_encoding::BASE64.encode(&k);
    let std_nopad = data_encoding::BASE64_NOPAD.encode(&k);
    let url = data_encoding::BASE64URL_NOPAD.encode(&[0xfb; 32]); // contains '-' / '_'
    let upper_hex = KAT_KEY_HEX.to_uppercase();
    let reference = Keyring::single(7, kat_key())
        .encrypt_sync(b"x", b"a")
        .unwrap();
    for text in [
        KAT_KEY_HEX,
        upper_hex.as_str(),
        std_pad.as_str(),
        std_nopad.as_str(),
    ] {
        let ring = Keyring::from_config(&format!(" 7 : {text} ")).unwrap();
        assert_eq!(ring.key_ids(), vec![7]);
        assert_eq!(
            ring.decrypt_sync(&reference, b"a")
                .unwrap()
                .plaintext
                .as_slice(),
            b"x"
        );
    }
    let ring = Keyring::from_config(&format!("1:{KAT_KEY_HEX}, 2:{url} ; current = 2")).unwrap();
    assert_eq!(ring.key_ids(), vec![1, 2]);
    assert_eq!(ring.current_key_id(), 2);
    let ring = Keyring::from_config(&format!("1:{KAT_KEY_HEX},2:{url},;current=1")).unwrap();
    assert_eq!(ring.current_key_id(), 1);
}

#[test]
fn config_errors_are_specific_and_never_echo_keys() {
    let k1 = KAT_KEY_HEX;
    let k2 = "ff".repeat(32);
    let cases: Vec<(String, CryptoError)> = vec![
        (String::new(), CryptoError::EmptyKeyring),
        (" , ".into(), CryptoError::EmptyKeyring),
        // A bare key (no `ID:`) is key 1; a broken one is reported as key 1.
        (k1[..62].to_string(), CryptoError::InvalidKey { key_id: 1 }),
        (
            format!("{k1};current=1"),
            CryptoError::ConfigSyntax { entry: 1 },
        ),
        (
            format!("1:{k1},{k2}"),
            CryptoError::ConfigSyntax { entry: 2 },
        ),
        (format!("x:{k1}"), CryptoError::InvalidKeyId { entry: 1 }),
        (format!("-1:{k1}"), CryptoError::InvalidKeyId { entry: 1 }),
        (
            format!("4294967296:{k1}"),
            CryptoError::InvalidKeyId { entry: 1 },
        ),
        (
            format!("1:{}", &k1[..62]),
            CryptoError::InvalidKey { key_id: 1 },
        ),
        (
            format!("1:{}zz", &k1[..62]),
            CryptoError::InvalidKey { key_id: 1 },
        ),
        ("3:c2hvcnQ=".into(), CryptoError::InvalidKey { key_id: 3 }),
        (
            format!("1:{k1},1:{k2};current=1"),
            CryptoError::DuplicateKeyId { key_id: 1 },
        ),
        (format!("1:{k1},2:{k2}"), CryptoError::MissingCurrentKey),
        (
            format!("1:{k1},2:{k2};current=3"),
            CryptoError::UnknownCurrentKey { key_id: 3 },
        ),
        (
            format!("1:{k1};latest=1"),
            CryptoError::ConfigSyntax { entry: 0 },
        ),
        (
            format!("1:{k1};current=one"),
            CryptoError::ConfigSyntax { entry: 0 },
        ),
    ];
    for (config, expected) in cases {
        let err = Keyring::from_config(&config).unwrap_err();
        assert_eq!(err, expected, "config {config:?}");
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains(&k1[..16]) && !shown.contains(&k2[..16]),
            "{shown}"
        );
    }
    assert_eq!(
        BackupCodeKey::from_config("not a key").unwrap_err(),
        CryptoError::InvalidKey { key_id: 0 }
    );
    assert!(matches!(
        Keyring::from_env("TWOFACTOR_TEST_SURELY_UNSET_VARIABLE").unwrap_err(),
        CryptoError::MissingEnv { .. }
    ));
    assert_eq!(
        Keyring::new(Vec::<(u32, [u8; 32])>::new(), 1).unwrap_err(),
        CryptoError::EmptyKeyring
    );
}

#[test]
fn debug_output_never_shows_secrets() {
    let ring = Keyring::from_config(&format!("7:{KAT_KEY_HEX}")).unwrap();
    let shown = format!("{ring:?}");
    assert!(shown.contains("key_ids") && shown.contains('7'), "{shown}");
    assert!(!shown.contains("0001020304"), "{shown}");

    let opened = ring
        .decrypt_sync(&hex(KAT_BLOB_HEX), &secret_aad(KAT_USER))
        .unwrap();
    let shown = format!("{opened:?}");
    assert!(
        shown.contains("REDACTED") && !shown.contains("49, 50"),
        "{shown}"
    );

    let code = &backup_codes::generate(1)[0];
    let shown = format!("{code:?}");
    assert!(
        shown.contains("REDACTED") && !shown.contains(code.as_str()),
        "{shown}"
    );
    let pepper = BackupCodeKey::from_bytes(hex(KAT_PEPPER_HEX).try_into().unwrap());
    let shown = format!("{pepper:?}");
    assert!(
        shown.contains("REDACTED") && !shown.contains("96, 121"),
        "{shown}"
    );
}

// ---------------------------------------------------------------------------------------------
// Tampering never decrypts and never panics

fn sealed(pt: &[u8], user: &str) -> (Keyring, Vec<u8>) {
    let ring = Keyring::new([(1, key(1)), (2, key(2))], 2).unwrap();
    let blob = ring.encrypt_sync(pt, &secret_aad(user)).unwrap();
    (ring, blob)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip(pt in prop::collection::vec(any::<u8>(), 0..200), user in ".{0,40}", id in any::<u32>(), k in any::<[u8; 32]>()) {
        let ring = Keyring::single(id, k);
        let blob = ring.encrypt_sync(&pt, &secret_aad(&user)).unwrap();
        prop_assert_eq!(blob.len(), pt.len() + Keyring::OVERHEAD);
        prop_assert_eq!(blob[0], 1);
        prop_assert_eq!(&blob[1..5], &id.to_be_bytes());
        let opened = ring.decrypt_sync(&blob, &secret_aad(&user)).unwrap();
        prop_assert_eq!(opened.plaintext.as_slice(), pt.as_slice());
        prop_assert!(!opened.stale_key);
    }

    #[test]
    fn flipped_byte_fails(pt in prop::collection::vec(any::<u8>(), 0..64), at in any::<prop::sample::Index>(), mask in 1u8..=255) {
        let (ring, mut blob) = sealed(&pt, "user-1");
        let i = at.index(blob.len());
        blob[i] ^= mask;
        prop_assert_eq!(ring.decrypt_sync(&blob, &secret_aad("user-1")).unwrap_err(), CryptoError::Decrypt);
    }

    #[test]
    fn truncated_or_extended_blob_fails(pt in prop::collection::vec(any::<u8>(), 0..64), cut in any::<prop::sample::Index>(), extra in prop::collection::vec(any::<u8>(), 1..8)) {
        let (ring, blob) = sealed(&pt, "user-1");
        let keep = cut.index(blob.len());
        prop_assert_eq!(ring.decrypt_sync(&blob[..keep], &secret_aad("user-1")).unwrap_err(), CryptoError::Decrypt);
        let mut longer = blob.clone();
        longer.extend_from_slice(&extra);
        prop_assert_eq!(ring.decrypt_sync(&longer, &secret_aad("user-1")).unwrap_err(), CryptoError::Decrypt);
    }

    #[test]
    fn wrong_key_id_fails(pt in prop::collection::vec(any::<u8>(), 0..64), id in any::<u32>()) {
        let (ring, mut blob) = sealed(&pt, "user-1");
        prop_assume!(id != 2);
        blob[1..5].copy_from_slice(&id.to_be_bytes());
        prop_assert_eq!(ring.decrypt_sync(&blob, &secret_aad("user-1")).unwrap_err(), CryptoError::Decrypt);
    }

    #[test]
    fn wrong_key_fails(pt in prop::collection::vec(any::<u8>(), 0..64), k in any::<[u8; 32]>()) {
        prop_assume!(k != key(2));
        let (_, blob) = sealed(&pt, "user-1");
        let other = Keyring::single(2, k);
        prop_assert_eq!(other.decrypt_sync(&blob, &secret_aad("user-1")).unwrap_err(), CryptoError::Decrypt);
    }

    #[test]
    fn other_user_or_purpose_fails(pt in prop::collection::vec(any::<u8>(), 0..64), a in ".{0,20}", b in ".{0,20}", purpose in ".{0,30}") {
        prop_assume!(a != b);
        let (ring, blob) = sealed(&pt, &a);
        prop_assert_eq!(ring.decrypt_sync(&blob, &secret_aad(&b)).unwrap_err(), CryptoError::Decrypt);
        prop_assume!(purpose != SECRET_PURPOSE);
        prop_assert_eq!(ring.decrypt_sync(&blob, &aad_for(&purpose, &a)).unwrap_err(), CryptoError::Decrypt);
    }

    #[test]
    fn garbage_never_panics(blob in prop::collection::vec(any::<u8>(), 0..100), aad in prop::collection::vec(any::<u8>(), 0..20)) {
        let ring = Keyring::single(1, key(1));
        prop_assert_eq!(ring.decrypt_sync(&blob, &aad).unwrap_err(), CryptoError::Decrypt);
    }

    #[test]
    fn config_parser_never_panics(config in ".{0,120}") {
        let _ = Keyring::from_config(&config);
        let _ = BackupCodeKey::from_config(&config);
    }
}

// ---------------------------------------------------------------------------------------------
// Backup codes

const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn assert_well_formed(code: &str) {
    assert_eq!(code.len(), 14, "{code}");
    assert_eq!(
        (code.as_bytes()[4], code.as_bytes()[9]),
        (b'-', b'-'),
        "{code}"
    );
    let chars: String = code.chars().filter(|&c| c != '-').collect();
    assert_eq!(chars.len(), 12);
    assert!(chars.chars().all(|c| ALPHABET.contains(c)), "{code}");
    assert!(
        chars[..11].chars().any(|c| c.is_ascii_alphabetic()),
        "a letter among the random symbols: {code}"
    );
    assert_eq!(
        chars.as_bytes()[11],
        ALPHABET.as_bytes()[usize::from(check_of(&chars[..11]))],
        "{code}"
    );
}

/// GF(32) multiplication as a schoolbook carry-less product reduced by x⁵ + x² + 1: an
/// implementation independent of the crate's.
fn gf32_mul(a: u8, b: u8) -> u8 {
    let mut product: u16 = 0;
    for bit in 0..5 {
        if b >> bit & 1 == 1 {
            product ^= u16::from(a) << bit;
        }
    }
    for bit in (5..10).rev() {
        if product >> bit & 1 == 1 {
            product ^= 0b100101 << (bit - 5);
        }
    }
    product as u8
}

/// The check symbol's value by its definition: Σ xᵢ·α^(12−i), α = x.
fn check_of(random: &str) -> u8 {
    let mut sum = 0;
    for (i, c) in random.chars().enumerate() {
        let x = ALPHABET.find(c).unwrap() as u8;
        let mut weight = 1;
        for _ in 0..(11 - i) {
            weight = gf32_mul(weight, 2);
        }
        sum ^= gf32_mul(x, weight);
    }
    sum
}

#[test]
fn default_set_is_well_formed_and_unique() {
    let codes = backup_codes::generate(backup_codes::DEFAULT_COUNT);
    assert_eq!(codes.len(), 8);
    let set: HashSet<&str> = codes.iter().map(|c| c.as_str()).collect();
    assert_eq!(set.len(), 8);
    for c in &codes {
        assert_well_formed(c.as_str());
        assert!(backup_codes::looks_like_backup_code(c.as_str()));
    }
    assert!(backup_codes::generate(0).is_empty());
}

#[test]
fn large_seeded_set_is_unique_and_uses_the_whole_alphabet() {
    let codes = backup_codes::generate_with_rng(20_000, &mut StdRng::seed_from_u64(5));
    let set: HashSet<&str> = codes.iter().map(|c| c.as_str()).collect();
    assert_eq!(set.len(), codes.len());
    let mut counts = [0usize; 32];
    for c in &codes {
        assert_well_formed(c.as_str());
        for ch in c.as_str().chars().filter(|&c| c != '-') {
            counts[ALPHABET.find(ch).unwrap()] += 1;
        }
    }
    // 240 000 symbols over 32 values: 7500 expected each; a uniform draw stays within ±5%.
    for (i, n) in counts.iter().enumerate() {
        assert!(
            (7125..=7875).contains(n),
            "symbol {} drawn {n} times",
            &ALPHABET[i..=i]
        );
    }
}

#[test]
fn all_digit_and_duplicate_draws_are_redrawn() {
    let digits: Vec<u8> = (0..11).map(|d| d % 10).collect(); // "0123-4567-890": no letter
    let a: Vec<u8> = vec![10, 11, 12, 13, 14, 1, 2, 3, 4, 5, 6]; // "ABCD-E123-456"
    let a_high: Vec<u8> = a.iter().map(|b| b | 0xe0).collect(); // same symbols via the high bits
    let b: Vec<u8> = vec![31; 11]; // "ZZZZ-ZZZZ-ZZZ"
    let stream = [digits, a, a_high, b].concat();
    let codes = backup_codes::generate_with_rng(2, &mut FixedRng::new(stream));
    let shown: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
    let with_check = |random: &str| {
        let check = ALPHABET.as_bytes()[usize::from(check_of(random))] as char;
        let full = format!("{random}{check}");
        format!("{}-{}-{}", &full[..4], &full[4..8], &full[8..])
    };
    assert_eq!(
        shown,
        [with_check("ABCDE123456"), with_check("ZZZZZZZZZZZ")]
    );
}

#[test]
fn normalisation_table() {
    let table: &[(&str, Option<&str>)] = &[
        ("ABCDE-12345", Some("ABCDE12345")),
        ("abcde-12345", Some("ABCDE12345")),
        ("ABCDE12345", Some("ABCDE12345")),
        (" abcde 12345 ", Some("ABCDE12345")),
        ("ab cd-e1 2-3 45", Some("ABCDE12345")),
        ("ABCDE\t12345\n", Some("ABCDE12345")),
        ("ABCDE–12345", Some("ABCDE12345")), // en dash from a phone keyboard
        ("ABCDE—12345", Some("ABCDE12345")), // em dash
        ("oOiIl-LABCD", Some("001111ABCD")),
        ("A0000-00000", Some("A000000000")),
        ("zzzzz-zzzzz", Some("ZZZZZZZZZZ")),
        ("ABCDE-1234", None),   // 9 characters
        ("ABCDE-123456", None), // 11 characters
        ("ABCDU-12345", None),  // U is not Crockford
        ("ABCDE_12345", None),  // underscore is not a separator
        ("ABCDÉ-12345", None),  // non-ASCII
        ("12345-67890", None),  // all digits: a TOTP code
        ("1234567890", None),
        ("OOOOO-IIIII", None), // look-alikes map to digits only
        ("123456", None),
        ("", None),
        ("-----", None),
    ];
    // The current format: 12 symbols, the last a check symbol.
    let code = backup_codes::generate_with_rng(1, &mut StdRng::seed_from_u64(3))
        .pop()
        .unwrap();
    let canonical: String = code.as_str().chars().filter(|&c| c != '-').collect();
    let spaced = format!(" {} ", code.as_str().to_lowercase().replace('-', " "));
    let mut typo = canonical.clone().into_bytes();
    typo[3] = if typo[3] == b'A' { b'B' } else { b'A' };
    let typo = String::from_utf8(typo).unwrap();
    let table_v2: &[(&str, Option<&str>)] = &[
        (code.as_str(), Some(&canonical)),
        (&canonical, Some(&canonical)),
        (&spaced, Some(&canonical)),
        (&typo, None),                    // one symbol wrong: the check symbol says so
        (&canonical[..11], None),         // 11 characters
        (&format!("{canonical}A"), None), // 13 characters
    ];
    for (typed, expected) in table.iter().chain(table_v2) {
        let got = normalize(typed);
        assert_eq!(
            got.as_deref().map(String::as_str),
            *expected,
            "input {typed:?}"
        );
        assert_eq!(
            backup_codes::looks_like_backup_code(typed),
            expected.is_some()
        );
    }
    let long = format!("ABCDE-12345{}", " ".repeat(100));
    assert_eq!(
        normalize(&long),
        None,
        "input longer than 64 bytes is refused"
    );
}

/// Every single-symbol substitution and every adjacent swap of 2,000 codes, counted: the check
/// symbol catches all substitutions and all swaps of two random symbols, and most swaps of the
/// last random symbol with the check symbol.
#[test]
fn the_check_symbol_catches_typos() {
    let codes = backup_codes::generate_with_rng(2_000, &mut StdRng::seed_from_u64(9));
    let (mut subs, mut subs_caught) = (0u64, 0u64);
    let (mut swaps, mut swaps_caught) = (0u64, 0u64);
    let (mut last, mut last_caught) = (0u64, 0u64);
    for code in &codes {
        let chars: Vec<char> = normalize(code.as_str()).unwrap().chars().collect();
        for i in 0..12 {
            for c in ALPHABET.chars().filter(|&c| c != chars[i]) {
                let mut typo = chars.clone();
                typo[i] = c;
                let typo: String = typo.into_iter().collect();
                subs += 1;
                subs_caught += u64::from(normalize(&typo).is_none());
            }
        }
        for i in 0..11 {
            if chars[i] == chars[i + 1] {
                continue;
            }
            let mut typo = chars.clone();
            typo.swap(i, i + 1);
            let typo: String = typo.into_iter().collect();
            let caught = u64::from(normalize(&typo).is_none());
            if i == 10 {
                last += 1;
                last_caught += caught;
            } else {
                swaps += 1;
                swaps_caught += caught;
            }
        }
    }
    println!(
        "substitutions {subs_caught}/{subs}, adjacent swaps {swaps_caught}/{swaps}, \
         swaps with the check symbol {last_caught}/{last}"
    );
    assert_eq!(subs_caught, subs);
    assert_eq!(swaps_caught, swaps);
    // (x₁₁ and c swapped pass only when they are equal, which is no swap.)
    assert_eq!(last_caught, last);
    // A code of the first format still normalises (no check symbol to test).
    assert!(normalize("ABCDE-12345").is_some());
}

#[test]
fn hash_is_bound_to_user_and_key() {
    let k1 = BackupCodeKey::from_bytes(key(1));
    let k2 = BackupCodeKey::from_bytes(key(2));
    let code = &backup_codes::generate(1)[0];
    let h = k1.hash("alice", code);
    assert_eq!(k1.hash_input("alice", code.as_str()), Some(h));
    assert_eq!(
        k1.hash_input("alice", &code.as_str().to_lowercase()),
        Some(h)
    );
    assert_ne!(k1.hash("bob", code), h, "another user");
    assert_ne!(k2.hash("alice", code), h, "another pepper");
    assert_ne!(
        BackupCodeKey::derive(&key(1)).hash("alice", code),
        h,
        "derived, not raw"
    );
    assert_eq!(
        BackupCodeKey::derive(&key(1)).hash("alice", code),
        BackupCodeKey::derive(&key(1)).hash("alice", code)
    );
    // Length prefix: moving characters between user id and code cannot collide.
    assert_ne!(
        k1.hash_input("ab", "CDEFG12345"),
        k1.hash_input("abC", "DEFG123451")
    );
    assert_eq!(k1.hash_input("alice", "123456"), None);
}

#[test]
fn verify_finds_the_matching_index_only() {
    let pepper = BackupCodeKey::from_bytes(key(4));
    let codes = backup_codes::generate(8);
    let stored: Vec<_> = codes.iter().map(|c| pepper.hash("carol", c)).collect();
    for (i, c) in codes.iter().enumerate() {
        assert_eq!(pepper.verify("carol", c.as_str(), &stored), Some(i));
        let sloppy = c.as_str().to_lowercase().replace('-', " ");
        assert_eq!(pepper.verify("carol", &sloppy, &stored), Some(i));
        assert_eq!(pepper.verify("dave", c.as_str(), &stored), None);
        assert_eq!(
            BackupCodeKey::from_bytes(key(5)).verify("carol", c.as_str(), &stored),
            None
        );
    }
    let other = &backup_codes::generate(1)[0];
    assert_eq!(pepper.verify("carol", other.as_str(), &stored), None);
    assert_eq!(pepper.verify("carol", codes[0].as_str(), &[]), None);
    assert_eq!(pepper.verify("carol", "123456", &stored), None);
}

fn reformat(code: &str, case: &[bool], seps: &[u8]) -> String {
    let mut out = String::new();
    for (i, c) in code.chars().filter(|&c| c != '-').enumerate() {
        match seps.get(i).copied().unwrap_or(0) % 4 {
            1 => out.push(' '),
            2 => out.push('-'),
            _ => {}
        }
        let c = if case.get(i).copied().unwrap_or(false) {
            c.to_ascii_lowercase()
        } else {
            c
        };
        let c = match c {
            '0' if case.get(i).copied().unwrap_or(false) => 'o',
            '1' if seps.get(i).copied().unwrap_or(0) > 200 => 'l',
            c => c,
        };
        out.push(c);
    }
    out
}

proptest! {
    #[test]
    fn any_typing_of_a_code_normalises_to_it(seed in any::<u64>(), case in prop::collection::vec(any::<bool>(), 10), seps in prop::collection::vec(any::<u8>(), 10)) {
        let code = &backup_codes::generate_with_rng(1, &mut StdRng::seed_from_u64(seed))[0];
        let typed = reformat(code.as_str(), &case, &seps);
        let canonical: String = code.as_str().chars().filter(|&c| c != '-').collect();
        let got = normalize(&typed);
        prop_assert_eq!(got.as_deref().map(String::as_str), Some(canonical.as_str()));
        let pepper = BackupCodeKey::from_bytes(key(6));
        prop_assert_eq!(pepper.hash_input("u", &typed), Some(pepper.hash("u", code)));
    }

    #[test]
    fn normalize_never_panics_and_outputs_canonical(typed in ".{0,80}") {
        if let Some(n) = normalize(&typed) {
            prop_assert_eq!(n.len(), 10);
            prop_assert!(n.chars().all(|c| ALPHABET.contains(c)));
            prop_assert!(n.chars().any(|c| c.is_ascii_alphabetic()));
            let again = normalize(&n);
            prop_assert_eq!(again.as_deref(), Some(&*n));
        }
    }

    /// The table-driven scanner against the obvious character-by-character definition, on
    /// inputs drawn mostly from the characters that matter (alphabet, look-alikes, separators,
    /// non-ASCII).
    #[test]
    fn normalize_matches_its_definition(typed in "[0-9A-Za-z -]{9,12}|[0-9A-Za-z \t\u{2010}\u{2212}\u{00e9}\u{0130}\u{212a}_-]{0,20}|.{0,70}") {
        let expected = reference_normalize(&typed);
        prop_assert_eq!(normalize(&typed).as_deref().cloned(), expected.clone());
        prop_assert_eq!(backup_codes::looks_like_backup_code(&typed), expected.is_some());
        let pepper = BackupCodeKey::from_bytes(key(6));
        prop_assert_eq!(pepper.hash_input("u", &typed).is_some(), expected.is_some());
    }

    #[test]
    fn totp_codes_never_look_like_backup_codes(n in any::<u64>(), digits in 6usize..=10) {
        let code = format!("{:0width$}", n % 10u64.pow(digits as u32), width = digits);
        prop_assert!(!backup_codes::looks_like_backup_code(&code));
    }
}

/// `normalize` as documented, written the slow and obvious way.
fn reference_normalize(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let mut out = String::new();
    for c in typed.chars() {
        if c.is_whitespace() || "-\u{2010}\u{2011}\u{2012}\u{2013}\u{2014}\u{2212}".contains(c) {
            continue;
        }
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !ALPHABET.contains(c) {
            return None;
        }
        out.push(c);
    }
    (out.chars().count() == 10 && out.chars().any(|c| c.is_ascii_alphabetic())).then_some(out)
}

#[tokio::test]
async fn a_bare_key_is_key_one_and_interchangeable_with_its_ring_form() {
    let bare = Keyring::from_config(&format!("  {KAT_KEY_HEX}\n")).unwrap();
    assert_eq!(bare.key_ids(), vec![1]);
    assert_eq!(bare.current_key_id(), 1);
    let b64 = data_encoding::BASE64.encode(&kat_key());
    assert_eq!(Keyring::from_config(&b64).unwrap().key_ids(), vec![1]);
    // A blob made under the bare key opens under `1:<key>` and during a rotation to key 2.
    let blob = bare.encrypt(b"12345678901234567890", b"aad").await.unwrap();
    let ring = Keyring::from_config(&format!("1:{KAT_KEY_HEX}")).unwrap();
    assert!(!ring.decrypt(&blob, b"aad").await.unwrap().stale_key);
    let rotated =
        Keyring::from_config(&format!("1:{KAT_KEY_HEX},2:{};current=2", "ff".repeat(32))).unwrap();
    let opened = rotated.decrypt(&blob, b"aad").await.unwrap();
    assert_eq!(opened.plaintext.as_slice(), b"12345678901234567890");
    assert!(opened.stale_key);
}

/// `from_env` takes the same forms as `from_config`, and its errors name the variable and the
/// reason, never the value.
#[test]
#[allow(unsafe_code)] // set_var: each variable is unique to this test
fn from_env_names_the_variable_never_the_value() {
    let set = |name: &str, value: &str| unsafe { std::env::set_var(name, value) };
    let (ring_var, pepper_var) = (
        "TWOFACTOR_TEST_FROM_ENV_RING",
        "TWOFACTOR_TEST_FROM_ENV_PEPPER",
    );
    set(ring_var, KAT_KEY_HEX);
    assert_eq!(Keyring::from_env(ring_var).unwrap().key_ids(), vec![1]);
    set(pepper_var, KAT_KEY_HEX);
    let pepper = BackupCodeKey::from_env(pepper_var).unwrap();
    let code = &twofactor::backup_codes::generate(1)[0];
    assert_eq!(
        pepper.hash("u", code),
        BackupCodeKey::from_config(KAT_KEY_HEX)
            .unwrap()
            .hash("u", code)
    );

    let secretish = &KAT_KEY_HEX[..60];
    for value in [format!("1:{secretish}"), secretish.to_owned()] {
        set(ring_var, &value);
        let e = Keyring::from_env(ring_var).unwrap_err();
        assert_eq!(
            e,
            CryptoError::InvalidEnv {
                name: ring_var.into(),
                reason: Box::new(CryptoError::InvalidKey { key_id: 1 })
            }
        );
        let shown = format!("{e} {e:?}");
        assert!(
            shown.contains(ring_var) && !shown.contains(&secretish[..16]),
            "{shown}"
        );
        set(pepper_var, &value);
        let e = BackupCodeKey::from_env(pepper_var).unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(
            shown.contains(pepper_var) && !shown.contains(&secretish[..16]),
            "{shown}"
        );
        assert!(matches!(e, CryptoError::InvalidEnv { .. }));
    }
    assert!(matches!(
        BackupCodeKey::from_env("TWOFACTOR_TEST_SURELY_UNSET_VARIABLE").unwrap_err(),
        CryptoError::MissingEnv { .. }
    ));
}
