//! The published test vectors: RFC 4226 Appendix D (HOTP) and RFC 6238 Appendix B (TOTP).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hmac::{Hmac, KeyInit, Mac};
use twofactor::{Algorithm, Hotp, HotpOutcome, Secret, Totp, TotpOutcome, Window};

/// RFC 4226 Appendix D: the secret is the ASCII string "12345678901234567890".
const RFC4226_SECRET: &[u8] = b"12345678901234567890";

/// One row of RFC 4226 Appendix D.
struct HotpVector {
    counter: u64,
    /// "Intermediate HMAC values" table: HMAC-SHA-1(secret, counter), hex.
    hmac_sha1: &'static str,
    /// "Truncated values" table: the 31-bit dynamic truncation, hex and decimal.
    truncated_hex: u32,
    truncated_dec: u32,
    /// The 6-digit HOTP value.
    hotp: &'static str,
}

const fn hv(
    counter: u64,
    hmac_sha1: &'static str,
    truncated_hex: u32,
    truncated_dec: u32,
    hotp: &'static str,
) -> HotpVector {
    HotpVector {
        counter,
        hmac_sha1,
        truncated_hex,
        truncated_dec,
        hotp,
    }
}

/// RFC 4226 Appendix D, counters 0 to 9.
#[rustfmt::skip]
const RFC4226_APPENDIX_D: [HotpVector; 10] = [
    hv(0, "cc93cf18508d94934c64b65d8ba7667fb7cde4b0", 0x4c93_cf18, 1_284_755_224, "755224"),
    hv(1, "75a48a19d4cbe100644e8ac1397eea747a2d33ab", 0x4139_7eea, 1_094_287_082, "287082"),
    hv(2, "0bacb7fa082fef30782211938bc1c5e70416ff44", 0x082f_ef30,   137_359_152, "359152"),
    hv(3, "66c28227d03a2d5529262ff016a1e6ef76557ece", 0x66ef_7655, 1_726_969_429, "969429"),
    hv(4, "a904c900a64b35909874b33e61c5938a8e15ed1c", 0x61c5_938a, 1_640_338_314, "338314"),
    hv(5, "a37e783d7b7233c083d4f62926c7a25f238d0316", 0x33c0_83d4,   868_254_676, "254676"),
    hv(6, "bc9cd28561042c83f219324d3c607256c03272ae", 0x7256_c032, 1_918_287_922, "287922"),
    hv(7, "a4fb960c0bc06e1eabb804e5b397cdc4b45596fa", 0x04e5_b397,    82_162_583, "162583"),
    hv(8, "1b3c89f65e6c9e883012052823443f048b4332db", 0x2823_443f,   673_399_871, "399871"),
    hv(9, "1637409809a679dc698207310c8c7fc07290d9e5", 0x2679_dc69,   645_520_489, "520489"),
];

/// RFC 6238 Appendix B seeds, as corrected by erratum 2866: the reference code keys each
/// algorithm with a seed as long as its output (20, 32 and 64 bytes), not the 20-byte seed the
/// text mentions.
const SEED_SHA1: &[u8; 20] = b"12345678901234567890";
const SEED_SHA256: &[u8; 32] = b"12345678901234567890123456789012";
const SEED_SHA512: &[u8; 64] = b"1234567890123456789012345678901234567890123456789012345678901234";

/// One row of RFC 6238 Appendix B (8 digits, 30-second steps, T0 = 0).
struct TotpVector {
    unix: u64,
    /// The "T (hex)" column.
    step: u64,
    sha1: &'static str,
    sha256: &'static str,
    sha512: &'static str,
}

/// RFC 6238 Appendix B.
#[rustfmt::skip]
const RFC6238_APPENDIX_B: [TotpVector; 6] = [
    TotpVector { unix: 59,          step: 0x0000_0000_0000_0001, sha1: "94287082", sha256: "46119246", sha512: "90693936" },
    TotpVector { unix: 1111111109,  step: 0x0000_0000_0235_23EC, sha1: "07081804", sha256: "68084774", sha512: "25091201" },
    TotpVector { unix: 1111111111,  step: 0x0000_0000_0235_23ED, sha1: "14050471", sha256: "67062674", sha512: "99943326" },
    TotpVector { unix: 1234567890,  step: 0x0000_0000_0273_EF07, sha1: "89005924", sha256: "91819424", sha512: "93441116" },
    TotpVector { unix: 2000000000,  step: 0x0000_0000_03F9_40AA, sha1: "69279037", sha256: "90698825", sha512: "38618901" },
    TotpVector { unix: 20000000000, step: 0x0000_0000_27BC_86AA, sha1: "65353130", sha256: "77737706", sha512: "47863826" },
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 4226 section 5.3, written out independently of the crate.
fn dynamic_truncation(hmac: &[u8]) -> u32 {
    let offset = usize::from(hmac[hmac.len() - 1] & 0x0f);
    u32::from_be_bytes(hmac[offset..offset + 4].try_into().unwrap()) & 0x7fff_ffff
}

#[test]
fn rfc4226_appendix_d_intermediate_values() {
    for v in &RFC4226_APPENDIX_D {
        let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(RFC4226_SECRET).unwrap();
        mac.update(&v.counter.to_be_bytes());
        let digest = mac.finalize().into_bytes();
        assert_eq!(hex(&digest), v.hmac_sha1, "HMAC, counter {}", v.counter);
        assert_eq!(v.truncated_hex, v.truncated_dec, "table self-check");
        assert_eq!(
            dynamic_truncation(&digest),
            v.truncated_dec,
            "truncation, counter {}",
            v.counter
        );
    }
}

#[test]
fn rfc4226_appendix_d_hotp() {
    let secret = Secret::from_bytes(RFC4226_SECRET).unwrap();
    let hotp = Hotp::new(&secret, Algorithm::Sha1, 6).unwrap();
    // With 10 digits, value mod 10^10 is the whole 31-bit truncated value: this checks the crate's
    // own HMAC and truncation against the intermediate table.
    let hotp10 = Hotp::new(&secret, Algorithm::Sha1, 10).unwrap();
    for v in &RFC4226_APPENDIX_D {
        assert_eq!(
            hotp.generate(v.counter).as_str(),
            v.hotp,
            "counter {}",
            v.counter
        );
        assert_eq!(
            hotp10.generate(v.counter).as_str(),
            format!("{:010}", v.truncated_dec),
            "counter {}",
            v.counter
        );
        assert_eq!(
            hotp.verify(v.hotp, v.counter, 0).unwrap(),
            HotpOutcome::Valid { counter: v.counter }
        );
    }
    // Resynchronisation (RFC 4226 section 7.4): counter 7's code found looking ahead from 3.
    assert_eq!(
        hotp.verify(RFC4226_APPENDIX_D[7].hotp, 3, 4).unwrap(),
        HotpOutcome::Valid { counter: 7 }
    );
    assert_eq!(
        hotp.verify(RFC4226_APPENDIX_D[7].hotp, 3, 3).unwrap(),
        HotpOutcome::Invalid
    );
}

#[test]
fn rfc6238_appendix_b_all_algorithms() {
    type Column = fn(&TotpVector) -> &'static str;
    let cases: [(Algorithm, &[u8], Column); 3] = [
        (Algorithm::Sha1, SEED_SHA1, |v| v.sha1),
        (Algorithm::Sha256, SEED_SHA256, |v| v.sha256),
        (Algorithm::Sha512, SEED_SHA512, |v| v.sha512),
    ];
    for (algorithm, seed, expected) in cases {
        let secret = Secret::from_bytes(seed).unwrap();
        let totp = Totp::builder(&secret)
            .algorithm(algorithm)
            .digits(8)
            .window(Window::EXACT)
            .build()
            .unwrap();
        for v in &RFC6238_APPENDIX_B {
            assert_eq!(totp.step_at(v.unix).unwrap(), v.step);
            assert_eq!(
                totp.generate_at(v.unix).unwrap().as_str(),
                expected(v),
                "{algorithm} at {}",
                v.unix
            );
            let outcome = totp.verify_at(expected(v), v.unix).unwrap();
            assert_eq!(
                outcome.matched().map(|m| (m.step, m.drift)),
                Some((v.step, 0))
            );
            // The same code one step later is outside an exact window.
            assert_eq!(
                totp.verify_at(expected(v), v.unix + 30).unwrap(),
                TotpOutcome::Invalid
            );
        }
    }
}
