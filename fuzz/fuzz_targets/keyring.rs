//! Fuzzes the keyring: `Keyring::from_config` (and `BackupCodeKey::from_config`, which shares its
//! key parser) and `decrypt` on hostile blobs.
//!
//! Input layout: `config_len: u16 LE | aad_len: u8 | flip_at: u16 LE | flip: u8 | config text |
//! aad | blob`. The blob is tried against the fuzzed ring and against a fixed ring whose keys
//! appear nowhere in the seeds; it is also the plaintext of a real encryption under the fixed
//! ring, which must round-trip (through `SecretCipher` too) and fail after any one-byte change,
//! truncation, extension or change of associated data. Nothing may panic.
#![no_main]

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use rand::{TryCryptoRng, TryRng};
use twofactor::{BackupCodeKey, CryptoError, Keyring, SecretCipher};

/// Key ids 1 and 2 of the fixed ring; 2 is current.
const FIXED_KEYS: [(u32, [u8; 32]); 2] = [(1, [0x5a; 32]), (2, [0xc3; 32])];
const HEADER: usize = 6;

fuzz_target!(|data: &[u8]| {
    let Some((header, body)) = data.split_first_chunk::<HEADER>() else {
        return;
    };
    let config_len = usize::from(u16::from_le_bytes([header[0], header[1]])).min(body.len());
    let (config, body) = body.split_at(config_len);
    let aad_len = usize::from(header[2]).min(body.len());
    let (aad, blob) = body.split_at(aad_len);
    let flip_at = usize::from(u16::from_le_bytes([header[3], header[4]]));
    let flip = header[5];

    if let Ok(config) = std::str::from_utf8(config) {
        if let Ok(ring) = Keyring::from_config(config) {
            check_ring(&ring, config);
            if let Ok(opened) = ring.decrypt_sync(blob, aad) {
                // Possible only for a genuine blob under a key the config names (a seed's).
                let key_id = u32::from_be_bytes([blob[1], blob[2], blob[3], blob[4]]);
                assert_eq!(blob[0], 1, "version");
                assert!(ring.key_ids().contains(&key_id));
                assert_eq!(opened.plaintext.len(), blob.len() - Keyring::OVERHEAD);
                assert_eq!(opened.stale_key, key_id != ring.current_key_id());
            }
        }
        let _ = BackupCodeKey::from_config(config);
    }

    let fixed = Keyring::new(FIXED_KEYS, 2).expect("valid fixed ring");
    assert_eq!(
        fixed.decrypt_sync(blob, aad).unwrap_err(),
        CryptoError::Decrypt,
        "a fuzzed blob decrypted under a key it cannot know"
    );

    round_trip(&fixed, blob, aad, flip_at, flip);
});

/// A parsed ring is well formed, and its `Debug` shows no key text.
fn check_ring(ring: &Keyring, config: &str) {
    let mut ids = ring.key_ids();
    assert!(!ids.is_empty());
    assert!(ids.contains(&ring.current_key_id()));
    assert!(ids.len() <= config.matches(',').count() + 1);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), ring.key_ids().len(), "duplicate key ids");
    let shown = format!("{ring:?}");
    for entry in config.split([',', ';']) {
        if let Some((_, key)) = entry.split_once(':') {
            let key = key.trim();
            assert!(key.len() < 16 || !shown.contains(key), "Debug shows a key");
        }
    }
}

/// Encrypts `plaintext` under the fixed ring (nonce taken from the input, so runs are
/// reproducible) and checks that exactly the genuine blob with the genuine AAD decrypts.
fn round_trip(fixed: &Keyring, plaintext: &[u8], aad: &[u8], flip_at: usize, flip: u8) {
    let mut nonce = InputRng(plaintext.iter().rev().copied().chain(aad.iter().copied()));
    let Ok(blob) = fixed.encrypt_with_rng(plaintext, aad, &mut nonce) else {
        assert!(
            plaintext.len() > 64 * 1024,
            "encryption refused a small plaintext"
        );
        return;
    };
    assert_eq!(blob.len(), plaintext.len() + Keyring::OVERHEAD);

    let opened = fixed
        .decrypt_sync(&blob, aad)
        .expect("genuine blob decrypts");
    assert_eq!(opened.plaintext.as_slice(), plaintext);
    assert!(!opened.stale_key);
    let via_trait = ready(fixed.decrypt(&blob, aad)).expect("genuine blob decrypts (trait)");
    assert_eq!(via_trait.plaintext.as_slice(), plaintext);

    // The same blob is stale under a ring where key 1 is current.
    let rotated = Keyring::new(FIXED_KEYS, 1).expect("valid fixed ring");
    assert!(
        rotated
            .decrypt_sync(&blob, aad)
            .expect("old key still decrypts")
            .stale_key
    );

    let fails = |candidate: &[u8], candidate_aad: &[u8]| {
        fixed.decrypt_sync(candidate, candidate_aad).unwrap_err() == CryptoError::Decrypt
    };
    let mut mutated = blob.clone();
    mutated[flip_at % blob.len()] ^= flip.max(1);
    assert!(
        fails(&mutated, aad),
        "one-byte change at {} decrypted",
        flip_at % blob.len()
    );
    assert!(
        fails(&blob[..flip_at % blob.len()], aad),
        "truncated blob decrypted"
    );
    let mut extended = blob.clone();
    extended.push(flip);
    assert!(fails(&extended, aad), "extended blob decrypted");
    let mut other_aad = aad.to_vec();
    match other_aad.get_mut(flip_at % (aad.len() + 1)) {
        Some(byte) => *byte ^= flip.max(1),
        None => other_aad.push(flip),
    }
    assert!(
        fails(&blob, &other_aad),
        "blob decrypted with other associated data"
    );
}

/// Polls a future that must be ready at once: `Keyring`'s `SecretCipher` futures are.
fn ready<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("Keyring future was not ready"),
    }
}

/// Replays input bytes as randomness, then zeros.
struct InputRng<I>(I);

impl<I: Iterator<Item = u8>> TryRng for InputRng<I> {
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
            *d = self.0.next().unwrap_or(0);
        }
        Ok(())
    }
}

impl<I: Iterator<Item = u8>> TryCryptoRng for InputRng<I> {}
