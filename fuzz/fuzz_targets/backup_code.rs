//! Fuzzes backup-code input handling: `normalize`, `looks_like_backup_code` and
//! `BackupCodeKey::hash_input`.
//!
//! On any text: nothing panics; a normalised code is 10 Crockford characters with a letter and
//! normalises to itself; `looks_like_backup_code` and `hash_input` agree with `normalize`.
//! Independently, the first 10 input bytes pick a generated code and the next bytes choose how a
//! user types it (case, look-alikes `o`/`i`/`l`, spaces, tabs, hyphens, Unicode dashes): every
//! such typing within the 64-byte input limit hashes equal to the generated code, and any longer
//! one is refused.
#![no_main]

use std::convert::Infallible;

use libfuzzer_sys::fuzz_target;
use rand::{TryCryptoRng, TryRng};
use twofactor::backup_codes::{self, BackupCodeKey, CODE_LEN, normalize};

const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Longest input `normalize` looks at (its documented bound).
const MAX_TYPED_LEN: usize = 64;
const SEPARATORS: [&str; 8] = [
    "", " ", "-", "\t", "\u{2010}", "\u{2013}", "\u{2014}", "\u{2212}",
];

fuzz_target!(|data: &[u8]| {
    let pepper = BackupCodeKey::from_bytes([0x42; 32]);
    if let Ok(typed) = std::str::from_utf8(data) {
        check_text(&pepper, typed);
    }
    check_typings(&pepper, data);
});

fn check_text(pepper: &BackupCodeKey, typed: &str) {
    let normal = normalize(typed);
    assert_eq!(
        backup_codes::looks_like_backup_code(typed),
        normal.is_some()
    );
    let Some(normal) = normal else {
        assert_eq!(pepper.hash_input("u", typed), None);
        return;
    };
    assert!(typed.len() <= MAX_TYPED_LEN);
    assert_eq!(normal.len(), CODE_LEN);
    assert!(
        normal.chars().all(|c| ALPHABET.contains(c)),
        "not canonical"
    );
    assert!(
        normal.chars().any(|c| c.is_ascii_alphabetic()),
        "all digits"
    );
    let again = normalize(&normal);
    assert_eq!(again.as_deref(), Some(&*normal), "not idempotent");
    let hash = pepper.hash_input("u", typed);
    assert!(hash.is_some());
    assert_eq!(hash, pepper.hash_input("u", &normal));
    assert_eq!(hash, pepper.hash_input("u", &typed.to_lowercase()));
}

fn check_typings(pepper: &BackupCodeKey, data: &[u8]) {
    let (symbols, style) = data.split_at(data.len().min(CODE_LEN));
    let mut rng = InputRng {
        bytes: symbols,
        pos: 0,
    };
    let code = &backup_codes::generate_with_rng(1, &mut rng)[0];
    let expected = pepper.hash("user-42", code);
    let canonical: String = code.as_str().chars().filter(|&c| c != '-').collect();
    assert_eq!(code.as_str().len(), CODE_LEN + 1);
    assert_eq!(normalize(code.as_str()).as_deref(), Some(&canonical));

    let mut typed = String::new();
    for (i, c) in canonical.chars().enumerate() {
        let s = style.get(i).copied().unwrap_or(0);
        push_separator(&mut typed, s);
        let lower = s & 1 == 1;
        let c = match (c, s >> 1 & 3) {
            ('0', 1) => 'O',
            ('1', 1) => 'I',
            ('1', 2) => 'L',
            (c, _) => c,
        };
        typed.push(if lower { c.to_ascii_lowercase() } else { c });
    }
    if let Some(&s) = style.get(CODE_LEN) {
        push_separator(&mut typed, s);
    }
    let hash = pepper.hash_input("user-42", &typed);
    if typed.len() <= MAX_TYPED_LEN {
        assert_eq!(
            hash,
            Some(expected),
            "typing {typed:?} of {canonical} hashes differently"
        );
        assert_eq!(
            pepper.verify("user-42", &typed, &[[0; 32], expected]),
            Some(1)
        );
        assert_eq!(pepper.verify("user-43", &typed, &[expected]), None);
    } else {
        assert_eq!(hash, None, "input over {MAX_TYPED_LEN} bytes accepted");
    }
}

/// Style byte: bits 5-7 pick a separator, bits 3-4 repeat it 1 to 4 times, so a typing can pass
/// the 64-byte limit.
fn push_separator(typed: &mut String, style: u8) {
    let separator = SEPARATORS[usize::from(style >> 5)];
    for _ in 0..=(style >> 3 & 3) {
        typed.push_str(separator);
    }
}

/// Replays input bytes as randomness, then a fixed-step counter so that a redraw (all-digit
/// code) always ends.
struct InputRng<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl TryRng for InputRng<'_> {
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
            *d = match self.bytes.get(self.pos) {
                Some(&b) => b,
                // 0x0b, 0x16, ... : the first symbol after the input is already a letter (B).
                None => ((self.pos - self.bytes.len() + 1) * 11) as u8,
            };
            self.pos += 1;
        }
        Ok(())
    }
}

impl TryCryptoRng for InputRng<'_> {}
