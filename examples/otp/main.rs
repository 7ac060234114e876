//! `otp`: an oathtool for this crate. Run `cargo run --example otp -- help`.

mod args;
mod backup;
mod uri;

use std::process::ExitCode;

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = raw.split_first() else {
        eprintln!("usage: otp <new|code|verify|diagnose|uri|parse|qr|backup-codes> [options]");
        return ExitCode::from(2);
    };
    match command.as_str() {
        "uri" | "parse" | "qr" => uri::run(command, rest),
        "backup-codes" => backup::run(rest),
        other => {
            eprintln!("otp: unknown command {other:?}");
            ExitCode::from(2)
        }
    }
}
