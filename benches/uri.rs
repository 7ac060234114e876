//! otpauth:// URI build and parse, and QR rendering.
//!
//! Run: `cargo bench --features qr --bench uri -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use twofactor::{Algorithm, OtpAuthUri, Qr, Secret};

fn uri() -> OtpAuthUri {
    let secret = Secret::from_bytes(&[0x42; 20]).expect("valid fixture");
    OtpAuthUri::totp_builder(secret, "alice@example.com")
        .issuer("Star Trek: Website")
        .algorithm(Algorithm::Sha1)
        .build()
        .expect("valid fixture")
}

fn bench(c: &mut Criterion) {
    let uri = uri();
    let text = uri.to_uri();
    c.bench_function("uri/build (to_uri, SHA-1 secret, issuer with colon)", |b| {
        b.iter(|| black_box(&uri).to_uri());
    });
    c.bench_function("uri/parse", |b| {
        b.iter(|| OtpAuthUri::parse(black_box(&text)));
    });
    let unicode = OtpAuthUri::totp_builder(
        Secret::from_bytes(&[0x42; 64]).expect("valid fixture"),
        "jürgen@müller.de",
    )
    .issuer("Café € 日本")
    .algorithm(Algorithm::Sha512)
    .build()
    .expect("valid fixture")
    .to_uri();
    c.bench_function("uri/parse (unicode, SHA-512 secret)", |b| {
        b.iter(|| OtpAuthUri::parse(black_box(&unicode)));
    });
    // Worst case the size cap allows: 4 KiB of tiny unknown parameters and escapes.
    let mut hostile = String::from("otpauth://totp/a?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    while hostile.len() + 6 <= OtpAuthUri::MAX_LEN {
        hostile.push_str("&x=%41");
    }
    c.bench_function("uri/parse (4 KiB, ~670 unknown parameters)", |b| {
        b.iter(|| OtpAuthUri::parse(black_box(&hostile)));
    });
    let qr = Qr::new(&uri).expect("valid fixture");
    c.bench_function("qr/svg", |b| b.iter(|| black_box(&qr).to_svg()));
    c.bench_function("qr/png", |b| b.iter(|| black_box(&qr).to_png()));
}

criterion_group!(benches, bench);
criterion_main!(benches);
