//! Encryption at rest and backup-code hashing.
//!
//! Run: `cargo bench --bench crypto -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use twofactor::Keyring;
use twofactor::backup_codes::{self, BackupCodeKey};
use twofactor::crypto::secret_aad;

fn bench_cipher(c: &mut Criterion) {
    let ring = Keyring::single(1, [7; 32]);
    let secret = [0x42u8; 20];
    let aad = secret_aad("user-123@example.com");
    let blob = ring.encrypt_sync(&secret, &aad).unwrap_or_default();

    c.bench_function("keyring encrypt 20-byte secret", |b| {
        b.iter(|| ring.encrypt_sync(black_box(&secret), black_box(&aad)))
    });
    c.bench_function("keyring decrypt 20-byte secret", |b| {
        b.iter(|| ring.decrypt_sync(black_box(&blob), black_box(&aad)))
    });
    c.bench_function("secret_aad", |b| {
        b.iter(|| secret_aad(black_box("user-123@example.com")))
    });
}

fn bench_backup_codes(c: &mut Criterion) {
    let pepper = BackupCodeKey::from_bytes([9; 32]);
    let codes = backup_codes::generate(backup_codes::DEFAULT_COUNT);
    let stored: Vec<_> = codes.iter().map(|c| pepper.hash("user-123", c)).collect();
    let typed = codes
        .last()
        .map(|c| c.as_str().to_lowercase())
        .unwrap_or_default();

    c.bench_function("backup code hash one", |b| {
        b.iter(|| pepper.hash(black_box("user-123"), black_box(&codes[0])))
    });
    c.bench_function("backup code hash_input (normalise + hash)", |b| {
        b.iter(|| pepper.hash_input(black_box("user-123"), black_box(&typed)))
    });
    c.bench_function("backup code verify against 8", |b| {
        b.iter(|| pepper.verify(black_box("user-123"), black_box(&typed), black_box(&stored)))
    });
    c.bench_function("backup codes generate 8", |b| {
        b.iter(|| backup_codes::generate(black_box(8)))
    });
}

criterion_group!(benches, bench_cipher, bench_backup_codes);
criterion_main!(benches);
