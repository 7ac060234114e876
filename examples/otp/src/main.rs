//! `otp`: an oathtool for this crate. Run `cargo run -p twofactor-otp -- help`.
//!
//! Exit codes: 0 success, 1 a code that does not verify (or diagnose found no match), 2 bad
//! arguments or input (one line on stderr, never a panic).

mod args;
mod backup;
mod import;
mod uri;

use std::process::ExitCode;

use args::Args;
use twofactor::{
    Algorithm, Clock, Hotp, HotpOutcome, Secret, SystemClock, Totp, TotpOutcome, Window,
};

const USAGE: &str = "\
usage: otp <command> [options]

  new [--algorithm A]                     print a fresh base32 secret
  code     --secret S [OTP options]       print the code
  verify   --secret S [OTP options] --code C [--past N] [--future N]
           prints `ok step=<step> drift=<k>` (exit 0) or `invalid` (exit 1);
           with --hotp, --future is the look-ahead and it prints `ok counter=<c>`
  diagnose --secret S [OTP options] --code C [--range STEPS]
           which step offset (and how many seconds) the code belongs to
  uri | parse | qr | backup-codes         see `otp <command> --help`
  import --store URL [--key-env VAR] [--issuer NAME] [--allow-short-secret] [--replace] FILE|-
           enrol users with their existing secrets: lines of `user_id,BASE32`,
           `user_id,otpauth://...` or JSON {user_id, secret or uri, ...}; the key comes from
           $TWOFACTOR_KEYS (or --key-env); one `line N: ...` report per line, never the secret

OTP options: --algorithm sha1|sha256|sha512 (any case, default sha1), --digits N (6-10,
default 6), --period SECONDS (default 30), --time UNIX (default now);
--hotp --counter C for HOTP instead of TOTP; --allow-short-secret accepts a legacy secret under
128 bits (e.g. JBSWY3DPEHPK3PXP).
Exit codes: 0 ok, 1 invalid code / no match, 2 bad arguments or input.";

/// The options shared by `code`, `verify` and `diagnose`.
const OTP_OPTIONS: &[&str] = &["secret", "algorithm", "digits", "period", "time", "counter"];
/// Their flags.
const OTP_FLAGS: &[&str] = &["hotp", "allow-short-secret"];

/// The `--secret` option, refusing secrets under 128 bits unless `--allow-short-secret` says the
/// secret is a legacy one (the classic 80-bit `JBSWY3DPEHPK3PXP`).
pub(crate) fn secret_option(args: &Args) -> Result<Secret, String> {
    let text = args.required("secret")?;
    let parsed = if args.flag("allow-short-secret") {
        twofactor::danger::short_secret_from_base32(text)
    } else {
        Secret::from_base32(text)
    };
    parsed.map_err(|e| match e {
        twofactor::Error::Secret(twofactor::error::SecretError::TooShort { len, .. }) => format!(
            "--secret: {len} bytes is under the 16 (128 bits) RFC 4226 requires; \
             add --allow-short-secret for a legacy secret"
        ),
        other => format!("--secret: {other}"),
    })
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = raw.split_first() else {
        eprintln!("usage: otp <new|code|verify|diagnose|uri|parse|qr|backup-codes> [options]");
        return ExitCode::from(2);
    };
    let result = match command.as_str() {
        "uri" | "parse" | "qr" => return uri::run(command, rest),
        "backup-codes" => return backup::run(rest),
        "import" => return import::run(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        "new" => new(rest),
        "code" => code(rest),
        "verify" => verify(rest),
        "diagnose" => diagnose(rest),
        other => Err(format!("unknown command {other:?} (try `otp help`)")),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("otp {command}: {message}");
            ExitCode::from(2)
        }
    }
}

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    let mut all = OTP_OPTIONS.to_vec();
    all.extend_from_slice(extra);
    all
}

fn parse(raw: &[String], with_value: &[&str], flags: &[&str]) -> Result<Args, String> {
    let args = Args::parse(raw, with_value, flags)?;
    if let Some(p) = args.positionals().first() {
        return Err(format!("unexpected argument {p:?}"));
    }
    Ok(args)
}

fn algorithm(args: &Args) -> Result<Algorithm, String> {
    args.value("algorithm").map_or(Ok(Algorithm::Sha1), |name| {
        Algorithm::from_name(name)
            .ok_or_else(|| format!("--algorithm: {name:?} is not sha1, sha256 or sha512"))
    })
}

/// A non-negative integer option, with a clear message for negative values.
fn unsigned<T: std::str::FromStr>(args: &Args, name: &str) -> Result<Option<T>, String> {
    if args
        .value(name)
        .is_some_and(|v| v.trim_start().starts_with('-'))
    {
        return Err(format!("--{name} must not be negative"));
    }
    args.number(name)
}

/// The generator the options describe.
enum Otp {
    Totp { totp: Totp, time: u64 },
    Hotp { hotp: Hotp, counter: u64 },
}

fn otp(args: &Args, window: Window) -> Result<Otp, String> {
    let secret = secret_option(args)?;
    let algorithm = algorithm(args)?;
    let digits = unsigned::<u32>(args, "digits")?.unwrap_or(6);
    if args.flag("hotp") {
        for totp_only in ["period", "time"] {
            if args.value(totp_only).is_some() {
                return Err(format!("--{totp_only} does not apply to --hotp"));
            }
        }
        let counter = unsigned::<u64>(args, "counter")?
            .ok_or_else(|| "--hotp needs --counter C".to_owned())?;
        let hotp = Hotp::new(&secret, algorithm, digits).map_err(|e| e.to_string())?;
        return Ok(Otp::Hotp { hotp, counter });
    }
    if args.value("counter").is_some() {
        return Err("--counter needs --hotp".to_owned());
    }
    let period = unsigned::<u64>(args, "period")?.unwrap_or(Totp::DEFAULT_PERIOD);
    let time = unsigned::<u64>(args, "time")?.unwrap_or_else(|| SystemClock.now());
    let totp = Totp::builder(&secret)
        .algorithm(algorithm)
        .digits(digits)
        .period(period)
        .window(window)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Otp::Totp { totp, time })
}

fn new(raw: &[String]) -> Result<ExitCode, String> {
    let args = parse(raw, &["algorithm"], &[])?;
    let secret = Secret::generate(algorithm(&args)?);
    println!("{}", secret.to_base32().as_str());
    Ok(ExitCode::SUCCESS)
}

fn code(raw: &[String]) -> Result<ExitCode, String> {
    let args = parse(raw, OTP_OPTIONS, OTP_FLAGS)?;
    let code = match otp(&args, Window::default())? {
        Otp::Totp { totp, time } => totp.generate_at(time).map_err(|e| e.to_string())?,
        Otp::Hotp { hotp, counter } => hotp.generate(counter),
    };
    println!("{}", code.as_str());
    Ok(ExitCode::SUCCESS)
}

fn verify(raw: &[String]) -> Result<ExitCode, String> {
    let args = parse(raw, &with(&["code", "past", "future"]), OTP_FLAGS)?;
    let given = args.required("code")?;
    let past = unsigned::<u32>(&args, "past")?;
    let future = unsigned::<u32>(&args, "future")?;
    let window = if args.flag("hotp") {
        Window::default()
    } else {
        Window::new(past.unwrap_or(1), future.unwrap_or(1)).map_err(|e| e.to_string())?
    };
    let ok = match otp(&args, window)? {
        Otp::Totp { time, totp } => {
            // A typo on the command line is a usage error, not a wrong code.
            totp.digits().check(given).map_err(|e| e.to_string())?;
            match totp.verify_at(given, time).map_err(|e| e.to_string())? {
                TotpOutcome::Valid(m) => {
                    println!("ok step={} drift={}", m.step, m.drift);
                    true
                }
                TotpOutcome::Invalid => false,
            }
        }
        Otp::Hotp { hotp, counter } => {
            if past.is_some() {
                return Err("--past does not apply to --hotp (HOTP only looks ahead)".to_owned());
            }
            hotp.digits().check(given).map_err(|e| e.to_string())?;
            match hotp
                .verify(given, counter, future.unwrap_or(0))
                .map_err(|e| e.to_string())?
            {
                HotpOutcome::Valid { counter } => {
                    println!("ok counter={counter}");
                    true
                }
                HotpOutcome::Invalid => false,
            }
        }
    };
    if ok {
        Ok(ExitCode::SUCCESS)
    } else {
        println!("invalid");
        Ok(ExitCode::from(1))
    }
}

fn diagnose(raw: &[String]) -> Result<ExitCode, String> {
    let args = parse(raw, &with(&["code", "range"]), OTP_FLAGS)?;
    let given = args.required("code")?;
    let Otp::Totp { totp, time } = otp(&args, Window::default())? else {
        return Err("diagnose is for TOTP (drop --hotp)".to_owned());
    };
    // Default: ±10 minutes, whatever the period.
    let default_range = u32::try_from(600u64.div_ceil(totp.period())).unwrap_or(1);
    let range = unsigned::<u32>(&args, "range")?.unwrap_or(default_range);
    let range_seconds = u64::from(range).saturating_mul(totp.period());
    match totp
        .diagnose_at(given, time, range)
        .map_err(|e| e.to_string())?
    {
        Some(d) => {
            println!(
                "match offset_steps={} offset_seconds={}: {d}",
                d.offset_steps, d.offset_seconds
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            println!(
                "no match within ±{range} steps (±{range_seconds} s): wrong secret, wrong parameters, or a clock far off"
            );
            Ok(ExitCode::from(1))
        }
    }
}
