//! `cargo run --example quickstart`: enrol a user (secret + otpauth URI), then verify a code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use twofactor::{Algorithm, OtpAuthUri, Secret, SystemClock, Totp, TotpOutcome};

fn main() -> Result<(), twofactor::Error> {
    // Enrolment: a fresh 160-bit secret from the OS CSPRNG.
    let secret = Secret::generate(Algorithm::Sha1);
    let totp = Totp::builder(&secret).build()?; // SHA-1, 6 digits, 30 s, window ±1

    // The URI the authenticator app scans as a QR code (`Qr::new(&uri)` with feature `qr`).
    // Never log a real one: it contains the secret.
    let uri = OtpAuthUri::totp_builder(secret.clone(), "demo@example.com")
        .issuer("twofactor")
        .build()?;
    let uri = uri.to_uri();
    println!("otpauth URI:  {}", uri.as_str());

    // What the app shows now, and the server's check of it.
    let code = totp.generate_now(&SystemClock)?;
    println!("current code: {}", code.as_str());
    match totp.verify_now(code.as_str(), &SystemClock)? {
        TotpOutcome::Valid(m) => println!("verified:     step {} drift {}", m.step, m.drift),
        TotpOutcome::Invalid => println!("rejected"),
    }
    Ok(())
}
