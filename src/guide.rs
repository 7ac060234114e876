//! The guide: how each part works, what it guarantees, and the figures behind the claims.
//!
//! The [crate front page](crate) shows the integration in one screen; this is the long form.
//!
//! ## Windows, drift and diagnosis
//!
//! `Totp::verify_at` accepts a code from the current time step or up to `past` steps before and
//! `future` steps after it (`Window::new(past, future)`, default ±1, at most ±10; wider only through
//! `danger::wide_window`). Every step of the window is computed and compared in constant time, with
//! no early exit. A valid code comes back as `TotpMatch { step, drift }`: `drift` is the matched step
//! minus the current one (-1: the code is from the previous step, the phone is slow or the user was
//! slow; +1: the phone is ahead). Store `step` and never accept it again.
//!
//! When a user says "my codes never work", `Totp::diagnose_at(code, now, range)` searches a wide
//! range (say ±20 steps = ±10 minutes) outwards from now and reports the offset in steps and seconds
//! ("the device's clock is about 90 s behind"). It is for support tools only: it is neither constant
//! time nor rate limited, and must never grant access.
//!
//! ```rust
//! use twofactor::{Secret, Totp, TotpOutcome};
//!
//! let secret = Secret::from_bytes(b"12345678901234567890")?;
//! let totp = Totp::builder(&secret).build()?;
//! let now = 1_111_111_199;
//! let old = totp.generate_at(now - 90)?; // a phone 90 s slow
//! assert_eq!(totp.verify_at(old.as_str(), now)?, TotpOutcome::Invalid); // outside ±1
//! let d = totp.diagnose_at(old.as_str(), now, 20)?.expect("found");
//! assert_eq!((d.offset_steps, d.offset_seconds), (-3, -90));
//! # Ok::<(), twofactor::Error>(())
//! ```
//!
//! # Enrolment URIs and QR codes
//!
//! An authenticator app learns a secret from an `otpauth://` URI (the Key URI Format), usually shown as
//! a QR code. `OtpAuthUri` builds one that every app reads the same way, and parses what other apps and
//! libraries wrote, refusing malformed input with a precise `UriError`:
//!
//! ```rust
//! use twofactor::{Algorithm, OtpAuthUri, Secret};
//!
//! let secret = Secret::generate(Algorithm::Sha1);
//! let uri = OtpAuthUri::totp_builder(secret, "kirk@example.com")
//!     .issuer("Star Trek: Website") // a ':' inside the issuer is written as %3A
//!     .build()?;
//! let text = uri.to_uri(); // contains the secret: zeroized on drop, never log it
//! assert!(text.starts_with("otpauth://totp/Star%20Trek%3A%20Website:kirk@example.com?secret="));
//!
//! // Importing: any case, either colon form, parameters in any order, unknown ones ignored.
//! let parsed = OtpAuthUri::parse(&text)?;
//! assert_eq!(parsed, uri);
//! let totp = parsed.totp()?; // ready to verify codes
//!
//! #[cfg(feature = "qr")]
//! {
//!     let qr = twofactor::Qr::new(&uri)?; // error correction M, 4-module quiet zone
//!     let svg = qr.to_svg(); // inline in the enrolment page
//!     let img = qr.to_data_url()?; // or <img src="data:image/png;base64,...">
//!     let png = qr.to_png()?; // or bytes
//!     print!("{}", qr.to_terminal().as_str()); // or a CLI
//!     assert!(svg.starts_with("<svg") && img.starts_with("data:") && png.starts_with(b"\x89PNG"));
//! }
//! # let _ = totp;
//! # Ok::<(), twofactor::Error>(())
//! ```
//!
//! Rules: labels and values are percent-encoded per RFC 3986 (space is `%20`, never `+`; unicode as
//! UTF-8); the issuer goes both in the label and in `issuer=`; an issuer is at most 128 bytes, an
//! account 256 bytes, a URI 4 KiB (longer input is refused before parsing). Parsing needs a secret of at
//! least 128 bits; `danger::parse_uri_allowing_short_secret` imports legacy 80-bit secrets. Serve QR
//! codes only to the enrolling user, with `Cache-Control: no-store`: the image is the secret.
//!
//! From the command line:
//!
//! ```sh
//! cargo run -p twofactor-otp -- uri --secret GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ --account alice --issuer Example
//! cargo run -p twofactor-otp -- parse 'otpauth://totp/Example:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'
//! cargo run -p twofactor-otp -- qr 'otpauth://totp/Example:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ' --out code.png
//! ```
//!
//!
//! # Backup codes
//!
//! A user who loses the phone needs a way back in. Generate a set of single-use backup codes, show
//! them once, and store only their keyed hashes:
//!
//! ```rust
//! use twofactor::backup_codes::{self, BackupCodeKey};
//!
//! // The pepper lives outside the database (configuration, KMS); derive it from a master key.
//! # let master_key = [7u8; 32];
//! let pepper = BackupCodeKey::derive(&master_key);
//!
//! let codes = backup_codes::generate(backup_codes::DEFAULT_COUNT); // 8 codes, "XXXX-XXXX-XXXX"
//! let stored: Vec<_> = codes.iter().map(|c| pepper.hash("user-42", c)).collect();
//! // Show `c.as_str()` to the user once; never store or log the codes themselves.
//!
//! // Later the user types one, sloppily: any case, spaces, hyphens, O for 0, I or L for 1.
//! let typed = codes[3].as_str().to_lowercase().replace('-', " ");
//! assert!(backup_codes::looks_like_backup_code(&typed)); // not a TOTP code
//! assert_eq!(pepper.verify("user-42", &typed, &stored), Some(3));
//! // With a store, look the hash up and delete it in one atomic call instead:
//! let hash = pepper.hash_input("user-42", &typed);
//! assert_eq!(hash, Some(stored[3]));
//! // A code is bound to its user: the same code does nothing for anyone else.
//! assert_eq!(pepper.verify("user-43", &typed, &stored), None);
//! ```
//!
//! Each code is 12 characters of Crockford base32 (`0-9 A-Z` without `I L O U`: 32 symbols, 5 bits
//! each), `XXXX-XXXX-XXXX`: 11 random symbols, which always contain a letter so a code is never
//! mistaken for an all-digit TOTP code, and a check symbol that catches every one-symbol typo and
//! every swap of neighbours before any lookup (a typo then costs the user nothing). The random part
//! is uniform over the 32^11 − 10^11 such strings: log2(32^11 − 10^11) ≈ **54.999996 bits**. With 8
//! codes, one online guess succeeds with probability 8 / 3.6×10^16 ≈ 2×10^-16, before any rate
//! limit. Codes of the first format (10 symbols, 49.99999 bits) still verify. Offline, the stored
//! HMAC-SHA256 hashes are useless without the pepper, and each is bound to its user id
//! (length-prefixed), so even with the pepper brute force costs 2^55 HMACs per user; the 8 hex characters (32 bits) that many tutorials use fall to 4×10^9. Regenerating
//! replaces the whole set. Changing the pepper voids every stored code.
//!
//! # Secrets encrypted at rest
//!
//! TOTP secrets are stored encrypted by a [`SecretCipher`](crate::crypto::SecretCipher): implement it
//! over your KMS or HSM, or use the built-in [`Keyring`](crate::crypto::Keyring), AES-256-GCM over
//! numbered keys loaded from one environment variable:
//!
//! ```text
//! TWOFACTOR_KEYS="1:<64 hex digits or base64>,2:<key>;current=2"
//! ```
//!
//! ```rust
//! use twofactor::crypto::{secret_aad, Keyring, SecretCipher};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), twofactor::CryptoError> {
//! # let (_, config) = Keyring::generate(); // demo key; in production: openssl rand -hex 32
//! let keys = Keyring::from_config(&config)?; // or Keyring::from_env("TWOFACTOR_KEYS")?
//!
//! let blob = keys.encrypt(b"12345678901234567890", &secret_aad("user-42")).await?;
//! let opened = keys.decrypt(&blob, &secret_aad("user-42")).await?;
//! assert_eq!(opened.plaintext.as_slice(), b"12345678901234567890");
//! if opened.stale_key {
//!     // Encrypted under an older key: encrypt again with the current one and store that.
//! }
//! // Copied into another user's row, it does not decrypt; the error says nothing more.
//! assert!(keys.decrypt(&blob, &secret_aad("user-43")).await.is_err());
//! # Ok(())
//! # }
//! ```
//!
//! The blob is `version (1 byte, 0x01) || key id (u32 BE) || nonce (12 bytes) || ciphertext || tag
//! (16 bytes)`, 33 bytes more than the secret, and the format is pinned by a known-answer test computed
//! with a second implementation. The associated data binds the purpose (`twofactor totp-secret v1`)
//! and the user id, length-prefixed, plus the blob header. To rotate: add the new key everywhere,
//! then make it `current`; old blobs still decrypt and report `stale_key` so they get rewritten; drop
//! the old key when none remain.
//!
//! **Nonce limits.** Nonces are 96 random bits. After q encryptions under one key the chance of a
//! repeated nonce is about q²/2^97; NIST SP 800-38D caps random-nonce GCM at 2^32 encryptions per key
//! (repeat chance about 2^-33). One encryption happens per enrolment and per rewrite, so even ten
//! million enrolments a day take over a year to reach 2^32: rotate yearly, and at once if a key may
//! have leaked. Keys are zeroized on drop and never printed; errors never contain key material.
//!
//!
//! # Keys, pepper and rotation
//!
//! A deployment holds two independent keys, both outside the database (environment, secret
//! store, KMS), and each has its own rule:
//!
//! | Key | Loads with | Protects | Rotation |
//! |---|---|---|---|
//! | Secret keys | [`Keyring::from_env`](crate::Keyring::from_env) | TOTP secrets (AES-256-GCM) | routine: yearly, or at once if leaked |
//! | Backup-code pepper | [`BackupCodeKey::from_env`](crate::BackupCodeKey::from_env) | backup-code hashes (HMAC) | **never** (it must outlive every key rotation) |
//!
//! ```text
//! TWOFACTOR_KEYS="$(openssl rand -hex 32)"            # a bare key is key id 1
//! TWOFACTOR_BACKUP_PEPPER="$(openssl rand -hex 32)"   # its own value, not derived from the above
//! ```
//!
//! ```rust
//! use twofactor::{BackupCodeKey, Keyring};
//! # fn main() -> Result<(), twofactor::CryptoError> {
//! # unsafe { std::env::set_var("TWOFACTOR_KEYS", "11".repeat(32)) };
//! # unsafe { std::env::set_var("TWOFACTOR_BACKUP_PEPPER", "22".repeat(32)) };
//! let keys = Keyring::from_env("TWOFACTOR_KEYS")?;
//! let pepper = BackupCodeKey::from_env("TWOFACTOR_BACKUP_PEPPER")?;
//! # let _ = (keys, pepper);
//! # Ok(()) }
//! ```
//!
//! Errors name the variable and what is wrong with it, never the value.
//!
//! **Rotating the secret keys** needs no downtime and no batch job: blobs carry their key id.
//!
//! 1. Add the new key on every instance, the old one still current:
//!    `TWOFACTOR_KEYS="1:<old>,2:<new>;current=1"` (a bare key was key 1).
//! 2. Once every instance has it, make it current: `...;current=2`. New enrolments use key 2;
//!    each user's secret is re-encrypted under key 2 at their next successful login.
//! 3. Drop key 1 when nothing is encrypted under it any more. Users who never logged in meanwhile
//!    still have blobs under key 1: keep it until they are gone, or accept that they re-enrol.
//!
//! **The pepper does not rotate.** A backup code is stored only as `HMAC(pepper, user id, code)`;
//! nobody knows the codes, so nothing can be re-hashed, and a new pepper voids every stored code
//! at once, silently, to be found out the day a user has lost their phone. Keep it in its own
//! variable; do not derive it ([`BackupCodeKey::derive`](crate::BackupCodeKey::derive)) from a
//! secret key that will rotate. If the pepper leaks, change it **and** make every user regenerate
//! their codes: a leaked pepper alone does not let anyone in (the hashes must leak too, and each
//! code still costs 2^50 HMACs to find).
//!
//! # The service: enrolment, login, backup codes, recovery
//!
//! `TwoFactor` does the whole flow on top of two storage traits (`CredentialStore` for durable
//! credentials, `EphemeralStore` for challenges and rate limits), a `SecretCipher` (secrets are
//! encrypted at rest) and a clock. Every single-use step is one atomic store call, so a code, a
//! backup code or a challenge works once even under concurrent requests.
//!
//! ```rust
//! use twofactor::service::{CompleteLogin, Config, LoginStart, Remember, SecondFactor, StartLogin};
//! use twofactor::{
//!     BackupCodeKey, ConfirmOutcome, EnrolmentStart, Keyring, MemoryStore, Totp, TwoFactor,
//!     VerifyOutcome,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryStore::new(); // tests and single-process apps; use SQL/Redis stores in production
//! let (keyring, _config_line) = Keyring::generate(); // load yours with Keyring::from_config
//! let twofactor = TwoFactor::from_store(
//!     store,
//!     keyring,
//!     BackupCodeKey::derive(b"a master key kept outside the database"),
//!     Config::new("Example"),
//! )?;
//!
//! // Enrolment: show the QR code (or the base32 secret), then confirm with a first code.
//! let EnrolmentStart::Started(enrolment) =
//!     twofactor.start_enrolment("user-42", "alice@example.com").await?
//! else {
//!     unreachable!("2FA is not on yet");
//! };
//! # #[cfg(feature = "qr")] {
//! let svg = enrolment.qr()?.to_svg(); // feature "qr"; or enrolment.otpauth_uri()
//! # assert!(svg.starts_with("<svg"));
//! # }
//! # let app = Totp::builder(enrolment.secret()).build()?; // stands in for the phone
//! # let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
//! # let typed_code = app.generate_at(now)?.as_str().to_owned();
//! let ConfirmOutcome::Confirmed { backup_codes } =
//!     twofactor.confirm_enrolment("user-42", &typed_code).await?
//! else {
//!     unreachable!("wrong code: ask again");
//! };
//! // Show the backup codes once: they are stored only as keyed hashes.
//! # assert_eq!(backup_codes.len(), 8);
//!
//! // Login, after the password was checked.
//! # let cookie: Option<String> = None; // the browser's device token, if it has one
//! match twofactor.start_login(StartLogin::new("user-42").device(cookie.as_deref())).await? {
//!     LoginStart::NotRequired | LoginStart::TrustedDevice => { /* logged in */ }
//!     LoginStart::Required { challenge, .. } => {
//!         // Send challenge.as_str() to the browser, ask for the code, then:
//!         # let typed = backup_codes[0].as_str(); // a TOTP code works the same way
//!         let attempt = CompleteLogin::new(challenge.as_str(), SecondFactor::Typed(typed))
//!             .device(cookie.as_deref())
//!             .remember(Remember::Device); // a device token: this browser's own budget
//!         match twofactor.complete_login(attempt).await? {
//!             VerifyOutcome::Success { user_id, .. } => assert_eq!(user_id, "user-42"),
//!             VerifyOutcome::RateLimited { retry_after_secs } => {
//!                 println!("too many attempts, retry in {retry_after_secs} s");
//!             }
//!             _ => println!("wrong code"), // wrong, replayed, expired: all look the same
//!         }
//!     }
//!     _ => {}
//! }
//! # Ok(())
//! # }
//! ```
//!
//! What the service guarantees:
//!
//! - **Replay:** a TOTP step is accepted once per user (compare-and-set on the last step), including
//!   the step that confirmed enrolment; a backup code and a login challenge are consumed atomically.
//! - **Indistinguishable failures:** wrong code, replayed code, unknown or expired challenge, user
//!   without 2FA and unknown user all return `Rejected` and get the same computation (a dummy
//!   secret is decrypted and checked). The store's lookup is not equal: see `benches/README.md`
//!   for what the timing harness measures. The reason is in the audit trail only.
//! - **Fail closed:** `Err` only for store, cipher or configuration failures; nobody is let in and
//!   nothing is consumed.
//! - **A failed `complete_login` does not consume the challenge** (typos happen; the per-user limiter
//!   bounds guesses); a success consumes it.
//! - **Audit:** every state change and verification result is an `AuditEvent`, sent to `tracing`
//!   (target `twofactor::audit`) and to your `AuditSink`. Events never contain secrets, codes, tokens
//!   or URIs. Use the sink to tell users about recovery requests, lockouts and backup-code use.
//! - **Recovery is not a back door:** `request_recovery(user, channel)` completes after 72 hours
//!   only with a `VerifiedChannel` (your app verified a link or code sent to the account's e-mail or
//!   phone, moments ago) on a quiet account; any other request needs an operator's
//!   `approve_recovery`. Every request is a notice: the `RecoveryRequested` event carries a
//!   `NoticeToken` to send to **every** channel of the owner; with it the owner cancels the request
//!   or calls `lock_down`. A second request keeps the first (its token stays valid). Any proof of the
//!   owner (a code, a backup code, a trusted browser, a device token) cancels a request no operator
//!   approved. `admin_reset` removes the factor at once.
//! - **A single code can add, not take away:** with a backup code, or an authenticator added within
//!   `Config::change_delay_secs` (72 h), `remove_authenticator`, `replace_authenticator` (the old
//!   one's removal), `regenerate_backup_codes` and `disable` are *scheduled*: they take effect when
//!   `complete_scheduled_changes` runs after the delay, the owner gets a `ChangeScheduled` notice,
//!   and an older authenticator's login, a browser trusted before the delay, or the notice token
//!   (`cancel_scheduled_change_with_token`, `lock_down`) cancels them. `lock_down` also revokes every
//!   device token and removes the authenticators added within the delay (never the oldest).
//! - **Lazy key rotation:** a secret read under an old key is re-encrypted under the current one.
//! - **Drift** is recorded (`status().last_drift`); windows are not shifted unless you set
//!   `Config::follow_drift` (bounded to ±10 steps).
//!
//! ## The adversary, and the arithmetic
//!
//! The model the service holds to: the attacker knows the user id and the password; sends requests at
//! any rate and concurrency, through any number of app instances; the owner keeps logging in (as
//! often as hourly) with TOTP and sometimes a backup code; any store write may fail (at any rate
//! below 1); the clock is right.
//!
//! - **Counted before evaluation.** The per-user budget (`RateLimitPolicy::totp_default`: 5 failures
//!   per 10 minutes, TOTP and backup codes together) counts an attempt as a failure in the same
//!   atomic store operation that grants it. A success gives back its own attempt and nothing more,
//!   so the owner's logins never refill the attacker's budget, and a lost write after the evaluation
//!   can only over-count. Every 5th counted failure starts lockout *k*, lasting `600 s × 2^(k−1)`,
//!   with no cap; one failure is forgiven every 30 days so an owner's typos do not add up.
//! - **At most 92 candidate secrets compared in any 365 days:** a TOTP guess weighs, on the user's
//!   budget, as many units as the user has authenticators (five authenticators: one guess per
//!   window), so the bound does not grow with them. reaching failure 5k takes at least
//!   `600 × (2^(k−1) − 1)` s, so at most 80 failures are added in a year, and forgiveness gives back
//!   at most 12. Against a ±1 window (3 valid codes in 10⁶) that is a `≈ 2.8×10⁻⁴` chance a year.
//!   `tests/service_adversary.rs` runs a simulated year per owner behaviour (absent, daily, hourly,
//!   weekly backup codes, a known browser hourly), with bursts of 64 concurrent guesses and with 10 %
//!   and 100 % of store writes failing, on `MemoryStore` and SQLite, and counts the evaluations with
//!   a counting cipher: **76 in every scenario**. A fixed window alone (the tutorials' policy) allows
//!   262,800 a year, a 55 % chance.
//! - **The owner keeps a way in.** `complete_login` with `Remember::Device` hands a browser that
//!   logged in a device token (256 bits, stored hashed, bound to the user, 90 days, renewed at half
//!   life, revocable with `forget_devices`). Its attempts use the device's own budget, which
//!   failures from other clients never consume: in the year-long test the owner's browser gets in
//!   at the first try every day while the attacker runs at full rate. On a **new** browser the
//!   owner shares the locked budget with the attacker: they use a known browser, or an operator
//!   approves recovery.
//! - **The owner learns.** Each failed second factor on the user's budget raises
//!   `AuditEvent::SecondFactorFailed` with the count since the last login; `status()` gives
//!   `failures_since_login`, `last_login_at` and `locked_until`. After a password change call
//!   `password_changed(user, proof)`: every device token (trusted or not) ends, and with the
//!   `FactorProof` of an established factor checked in the same request (from `verify`'s
//!   `Success`) the lockout and a recovery request no operator approved end too. Without it the
//!   budget stays as it is: an app that calls it in a loop gives the attacker nothing (76 evaluated
//!   in a simulated year, `tests/service_takeover.rs`).
//! - **Single use across re-enrolment.** `advance_step` names the credential the code was checked
//!   against, so a code of a revoked secret still in flight is refused.
//!
//!
//! ## Several authenticators, a new phone, trusted browsers
//!
//! A user may hold up to `Config::max_authenticators` (5) authenticators, each with a name and its
//! creation and last-use times (`authenticators()`; never the secret). The rules, and what an
//! attacker who has only the password gets from each:
//!
//! - **Adding** (`add_authenticator`) needs a valid code from a factor the account already has (a
//!   backup code counts), drawn from the user's budget like any guess; the new secret is pending
//!   until `confirm_enrolment` gets a code from it. Password alone: nothing (a guess spent).
//! - **Removing** (`remove_authenticator`) needs a code from a factor that **stays**: a code of the
//!   one being removed is refused. The last one is removed only by `disable` (or recovery). The
//!   store refuses the last removal atomically, so two removals racing over the last two leave one.
//! - **A new phone** (`replace_authenticator`): a code from the old phone or a backup code, the new
//!   QR code, and the confirmation enables the new secret and deletes the old one in **one atomic
//!   store step**; until then the old phone works. At no moment has the account no second factor,
//!   which is what "turn 2FA off, then enrol again" got wrong.
//! - **Login** checks the code against every enabled authenticator: each secret is decrypted and
//!   checked whichever matches, so the work does not say which phone was used (it does grow with the
//!   number of phones, which the user chose). One budget for the user, not one per authenticator:
//!   five phones do not give five times the guesses. Each authenticator has its own last step, so a
//!   code is single use per authenticator, and a step advance on an authenticator removed meanwhile
//!   fails. By instruction count (callgrind, `verify` on `MemoryStore`) a login with five
//!   authenticators costs 3.7× one with a single authenticator (90,422 against 24,558 per call).
//!
//! **Trusted browsers.** After a login with a second factor the user may tick "remember this
//! browser": `complete_login` with `Remember::Trusted(label)` hands out a device token that is also
//! trusted for `Config::trusted_device_ttl_secs` (30 days) and labelled with what the app passes
//! ("Firefox on Linux"). `start_login` with that token (`StartLogin::device`) then answers
//! `LoginStart::TrustedDevice`: the password was enough. It is **the same token** as the known-device token of the adversary model, with a trust
//! flag and its own, shorter expiry, rather than a second kind: a browser holds one cookie, the trust
//! lapses before the token (the browser keeps its own attempt budget, not its skip), a renewed token
//! keeps the trust it had without extending it, and revoking a browser removes both at once. It is
//! stored hashed (SHA-256 of 256 random bits), bound to the user (another user's token is ignored),
//! listed by `trusted_devices` under an id derived from the hash, and revoked one by one
//! (`revoke_trusted_device`), all at once (`forget_devices`), and for every browser of the user by
//! `password_changed`, `disable`, a completed recovery and `admin_reset`: a browser an attacker got
//! trusted never outlives the owner taking the account back. A trusted login is not a second factor:
//! it does not cancel a recovery request.
//!
//! # Stores: SQLite, PostgreSQL, Redis
//!
//! State lives behind two traits (`store::CredentialStore` for credentials and backup codes,
//! `store::EphemeralStore` for login challenges and rate limits). The crate ships stores that take
//! the pool or connection your application already has; the SQL ones take a pool of sqlx 0.9 or
//! 0.8, whichever the application is on, with the same code (only the feature name differs):
//!
//! | store | feature | implements | for |
//! | --- | --- | --- | --- |
//! | `store::SqliteStore` | `sqlite` (sqlx 0.9) or `sqlite-sqlx08` | both | demos, single-node apps (a file; WAL recommended) |
//! | `store::PostgresStore` | `postgres` (sqlx 0.9) or `postgres-sqlx08` | both | several app servers on one database |
//! | `store::RedisStore` | `redis` | `EphemeralStore` | challenges and rate limits outside the main database |
//! | `store::MemoryStore` | — | both | tests, one process |
//!
//! Every operation that must happen once is one atomic statement or transaction, so several
//! application servers on one database agree on replay, single use and rate limits: the last accepted
//! TOTP step is a conditional `UPDATE ... WHERE last_step IS NULL OR last_step < $step`, a backup code
//! and a challenge are deleted and returned by one statement, a rate-limit update holds a row lock
//! (PostgreSQL), `BEGIN IMMEDIATE` (SQLite) or runs a compare-and-set loop (Redis). A successful TOTP
//! verification costs two round trips to the credential store (`get_credentials`, `advance_step`),
//! whatever the number of the user's authenticators.
//! Every store error is fail-closed: nobody is let in, and nothing is reported consumed.
//!
//! SQLite, with its own database file (or share your application's pool):
//!
//! ```rust,no_run
//! # #[cfg(feature = "sqlite")]
//! # async fn sqlite() -> Result<(), Box<dyn std::error::Error>> {
//! use sqlx::sqlite::SqlitePoolOptions;
//! use twofactor::store::{CredentialStore, SqliteStore};
//!
//! let pool = SqlitePoolOptions::new()
//!     .connect_with(SqliteStore::recommended_options("app.db")) // WAL, busy_timeout 5 s
//!     .await?;
//! let store = SqliteStore::new(pool);
//! store.migrate().await?; // CREATE TABLE IF NOT EXISTS twofactor_*, safe at every start-up
//! assert_eq!(store.backup_codes_remaining("alice").await?, 0);
//! // Pass `store.clone()` as both the credential and the ephemeral store of the service.
//! # Ok(()) }
//! ```
//!
//! PostgreSQL on the application's pool, with Redis for the short-lived state:
//!
//! ```rust,no_run
//! # #[cfg(all(feature = "postgres", feature = "redis"))]
//! # async fn postgres() -> Result<(), Box<dyn std::error::Error>> {
//! use twofactor::store::{PostgresStore, RedisStore};
//!
//! let pool = sqlx::PgPool::connect("postgres://app@db/app").await?;
//! let credentials = PostgresStore::new(pool);
//! credentials.migrate().await?;
//!
//! let client = redis::Client::open("redis://cache:6379")?;
//! let ephemeral = RedisStore::with_prefix(
//!     redis::aio::ConnectionManager::new(client).await?,
//!     "myapp:2fa:",
//! );
//! # let _ = (credentials, ephemeral);
//! # Ok(()) }
//! ```
//!
//! - **Tables** (prefix `twofactor_`, or your own with `with_prefix(pool, "tenant_tf_")`):
//!   `twofactor_authenticators` (one row per authenticator: encrypted secret, parameters, name,
//!   enabled, last step, drift, last use; at most one pending per user), `twofactor_backup_codes`
//!   (keyed hashes of unused codes), `twofactor_recovery`, `twofactor_devices` (known and trusted
//!   browsers, keyed by the SHA-256 of the token), `twofactor_challenges` (keyed by the SHA-256 of
//!   the token), `twofactor_limiter`. Schema version 3 moved the one-per-user
//!   `twofactor_credentials` rows into `twofactor_authenticators` and kept the old table as
//!   `twofactor_credentials_v2`; stop instances of the previous version before it runs. The schema is
//!   plain SQL in `migrations/sqlite/` and `migrations/postgres/`: `migrate()` applies those embedded
//!   files, idempotently, in one transaction (PostgreSQL: under an advisory lock, in the first schema
//!   of the `search_path`), and never touches your `_sqlx_migrations`. You may instead copy the files
//!   into your own migration tool.
//! - **Unsigned values** (Unix times, steps) are stored in signed 64-bit columns; a value above
//!   2^63−1 is refused with `SqlStoreError::OutOfRange`, never wrapped.
//! - **Expired rows**: expired challenges and limiter states are never reported valid, but the SQL
//!   stores keep them until you call [`Purge::purge_expired`](crate::store::Purge) (every store
//!   implements it); `twofactor::housekeeping::spawn(store.clone(), Duration::from_secs(300))`
//!   (feature `tokio`) runs it in the background. Redis drops keys by itself, a grace period
//!   (`with_gc_grace`, default 300 s) after their own expiry, and its `purge_expired` is a no-op.
//! - **Deleting a user**: [`TwoFactor::delete_user`](crate::TwoFactor::delete_user) removes
//!   everything the crate holds for a user in both stores (credential, backup codes, recovery
//!   request, device tokens, rate-limit states, open challenges). Call it when your application
//!   deletes the account; `disable` and `admin_reset` only turn the second factor off.
//! - **SQLite in memory**: `sqlite::memory:` is private to each connection; use a pool of exactly one
//!   connection that never closes, or a file.
//! - **Redis** keys are `{prefix}challenge:{hex}`, `{prefix}limiter:{key}` and
//!   `{prefix}user-challenges:{user id}` (a set naming the user's challenges, for `delete_user`). Validity is decided
//!   against the time the service passes in, not Redis's clock.
//!
//! Tests against the real services read their URLs at run time and run in their own schema / key
//! prefix:
//!
//! ```sh
//! TWOFACTOR_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//! TWOFACTOR_TEST_REDIS_URL=redis://127.0.0.1:6379 cargo test --all-features --test store
//! TWOFACTOR_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --all-features --bench store
//! ```
//!
//!
//! # Fuzzing
//!
//! Four cargo-fuzz targets (URI parsing, base32 secrets, the key ring, backup-code input) live in
//! `fuzz/`; `fuzz/README.md` says how to run them and what they found.
//!
#![cfg_attr(feature = "serde", doc = include_str!("guide_serde.md"))]
