//! Fuzzes `OtpAuthUri::parse`: it must never panic, and whatever it accepts must survive a
//! write-and-parse round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twofactor::OtpAuthUri;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for parse in [OtpAuthUri::parse, twofactor::danger::parse_uri_allowing_short_secret] {
        if let Ok(uri) = parse(text) {
            let written = uri.to_uri();
            assert!(written.len() <= OtpAuthUri::MAX_LEN);
            let again = parse(&written).expect("a written URI parses");
            assert!(again == uri, "round trip changed the URI");
        }
    }
});
