//! The label a trusted browser gets in the Security panel ("Chrome on Linux"), read from the
//! `User-Agent` header.
//!
//! The label is built from fixed words only, never from the header's text: whatever a client
//! sends (a 4 KiB header, control characters, markup, a forged "browser" name), the label is one
//! of a few dozen strings, at most 64 characters, which the service and the page can show as
//! they are. Anything unrecognised reads "This browser".

use axum::http::{HeaderMap, header};

/// The label when the `User-Agent` says nothing recognisable.
pub const UNKNOWN_BROWSER: &str = "This browser";

/// Longest `User-Agent` looked at; real ones are a few hundred bytes.
const MAX_USER_AGENT: usize = 1024;

/// Browsers, most specific first (Edge and Opera say "Chrome" too, Chrome says "Safari").
const BROWSERS: &[(&str, &str)] = &[
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Vivaldi/", "Vivaldi"),
    ("FxiOS/", "Firefox"),
    ("Firefox/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("HeadlessChrome/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
];

/// Systems, most specific first (Android says "Linux", iOS says "like Mac OS X").
const SYSTEMS: &[(&str, &str)] = &[
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
    ("FreeBSD", "FreeBSD"),
];

/// "Chrome on Linux", "Firefox", "A browser on Android" or [`UNKNOWN_BROWSER`].
pub fn browser_label(headers: &HeaderMap) -> String {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= MAX_USER_AGENT)
        .unwrap_or_default();
    let find = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(needle, _)| agent.contains(needle))
            .map(|(_, name)| *name)
    };
    match (find(BROWSERS), find(SYSTEMS)) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => browser.to_owned(),
        (None, Some(system)) => format!("A browser on {system}"),
        (None, None) => UNKNOWN_BROWSER.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn label(agent: &str) -> String {
        let mut h = HeaderMap::new();
        h.insert(header::USER_AGENT, HeaderValue::from_str(agent).unwrap());
        browser_label(&h)
    }

    #[test]
    fn common_browsers_get_short_names() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/131.0.0.0 Safari/537.36",
                "Chrome on Linux",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 HeadlessChrome/131.0.0.0 Safari/537.36",
                "Chrome on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like \
                 Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 \
                 Firefox/133.0",
                "Firefox on macOS",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like \
                 Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            ("curl/8.5.0", UNKNOWN_BROWSER),
            ("", UNKNOWN_BROWSER),
        ];
        for (agent, expected) in cases {
            assert_eq!(label(agent), expected, "{agent}");
        }
        assert_eq!(browser_label(&HeaderMap::new()), UNKNOWN_BROWSER);
    }

    #[test]
    fn hostile_agents_give_a_fixed_short_label() {
        let long = format!("Firefox/1 {}", "x".repeat(4000));
        assert_eq!(label(&long), UNKNOWN_BROWSER);
        let markup = "<script>alert(1)</script> Firefox/133.0\tLinux";
        assert_eq!(label(markup), "Firefox on Linux");
        // Every label the tables can make fits the service's 64 characters.
        for (_, browser) in BROWSERS {
            for (_, system) in SYSTEMS {
                assert!(format!("{browser} on {system}").chars().count() <= 64);
            }
        }
        // Not valid UTF-8 (obs-text): ignored.
        let mut h = HeaderMap::new();
        h.insert(
            header::USER_AGENT,
            HeaderValue::from_bytes(b"Firefox/1 \xff Linux").unwrap(),
        );
        assert_eq!(browser_label(&h), UNKNOWN_BROWSER);
    }
}
