//! `otp uri`, `otp parse`, `otp qr`.

use std::process::ExitCode;

use twofactor::error::{SecretError, UriError};
use twofactor::{Algorithm, OtpAuthUri, OtpKind, Qr};

use crate::args::Args;

/// Runs one of the URI subcommands; usage errors and bad input exit with code 2.
pub fn run(command: &str, args: &[String]) -> ExitCode {
    let result = match command {
        "uri" => build(args),
        "parse" => parse(args),
        _ => qr(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("otp {command}: {message}");
            ExitCode::from(2)
        }
    }
}

/// `otp uri --secret S --account A [--issuer I] [--algorithm A] [--digits N] [--period P]`
/// or `... --hotp --counter C`.
fn build(raw: &[String]) -> Result<(), String> {
    let args = Args::parse(
        raw,
        &[
            "secret",
            "account",
            "issuer",
            "algorithm",
            "digits",
            "period",
            "counter",
        ],
        &["hotp", "allow-short-secret"],
    )?;
    if let Some(extra) = args.positionals().first() {
        return Err(format!("unexpected argument {extra:?}"));
    }
    let secret = crate::secret_option(&args)?;
    let account = args.required("account")?;
    let algorithm = args
        .value("algorithm")
        .map(|a| a.parse::<Algorithm>().map_err(|e| e.to_string()))
        .transpose()?
        .unwrap_or_default();
    let digits = args.number::<u32>("digits")?.unwrap_or(6);
    let mut builder = if args.flag("hotp") {
        if args.value("period").is_some() {
            return Err("--period does not apply to --hotp".to_owned());
        }
        let counter = args
            .number::<u64>("counter")?
            .ok_or("--hotp needs --counter")?;
        OtpAuthUri::hotp_builder(secret, account, counter)
    } else {
        if args.value("counter").is_some() {
            return Err("--counter needs --hotp".to_owned());
        }
        let period = args
            .number::<u64>("period")?
            .unwrap_or(twofactor::Totp::DEFAULT_PERIOD);
        OtpAuthUri::totp_builder(secret, account).period(period)
    };
    if let Some(issuer) = args.value("issuer") {
        builder = builder.issuer(issuer);
    }
    let uri = builder
        .algorithm(algorithm)
        .digits(digits)
        .build()
        .map_err(|e| e.to_string())?;
    println!("{}", uri.to_uri().as_str());
    Ok(())
}

fn one_uri(args: &Args) -> Result<OtpAuthUri, String> {
    match args.positionals() {
        [uri] if args.flag("allow-short-secret") => {
            twofactor::danger::parse_uri_allowing_short_secret(uri).map_err(|e| e.to_string())
        }
        [uri] => OtpAuthUri::parse(uri).map_err(|e| match e {
            UriError::Secret(SecretError::TooShort { .. }) => {
                format!("{e}; add --allow-short-secret for a legacy secret")
            }
            other => other.to_string(),
        }),
        [] => Err("expected an otpauth:// URI".to_owned()),
        _ => Err("expected exactly one URI".to_owned()),
    }
}

/// `otp parse URI`: one JSON object on stdout.
fn parse(raw: &[String]) -> Result<(), String> {
    let args = Args::parse(raw, &[], &["allow-short-secret"])?;
    let uri = one_uri(&args)?;
    let (period, counter) = match uri.kind() {
        OtpKind::Totp { period } => (Some(period), None),
        OtpKind::Hotp { counter } => (None, Some(counter)),
    };
    let json = serde_json::json!({
        "type": uri.kind().as_str(),
        "issuer": uri.issuer(),
        "account": uri.account(),
        "secret": uri.secret().to_base32().as_str(),
        "algorithm": uri.algorithm().as_str(),
        "digits": uri.digits().get(),
        "period": period,
        "counter": counter,
    });
    println!("{json}");
    Ok(())
}

/// `otp qr URI [--out FILE.png|FILE.svg]`.
fn qr(raw: &[String]) -> Result<(), String> {
    let args = Args::parse(raw, &["out"], &["allow-short-secret"])?;
    let uri = one_uri(&args)?;
    let qr = Qr::new(&uri).map_err(|e| e.to_string())?;
    let Some(out) = args.value("out") else {
        print!("{}", qr.to_terminal().as_str());
        return Ok(());
    };
    let lower = out.to_ascii_lowercase();
    let written = if lower.ends_with(".png") {
        let png = qr.to_png().map_err(|e| e.to_string())?;
        std::fs::write(out, &*png)
    } else if lower.ends_with(".svg") {
        std::fs::write(out, qr.to_svg().as_bytes())
    } else {
        return Err("--out must end in .png or .svg".to_owned());
    };
    written.map_err(|e| format!("cannot write {out}: {e}"))
}
