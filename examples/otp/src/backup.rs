//! `otp backup-codes [--count N]`: prints a fresh set of backup codes, one per line.
//!
//! For demos only: nothing is stored, so these codes unlock nothing. An application stores
//! `BackupCodeKey::hash` of each code and shows the codes to the user once.

use std::process::ExitCode;

use twofactor::backup_codes;

use crate::args::Args;

/// Largest set the CLI prints; a user cannot keep track of more.
const MAX_COUNT: usize = 100;

pub fn run(raw: &[String]) -> ExitCode {
    match codes(raw) {
        Ok(codes) => {
            for code in &codes {
                println!("{}", code.as_str());
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("otp backup-codes: {message}");
            ExitCode::from(2)
        }
    }
}

fn codes(raw: &[String]) -> Result<Vec<backup_codes::BackupCode>, String> {
    let args = Args::parse(raw, &["count"], &[])?;
    if let Some(extra) = args.positionals().first() {
        return Err(format!("unexpected argument {extra:?}"));
    }
    let count = args
        .number::<usize>("count")?
        .unwrap_or(backup_codes::DEFAULT_COUNT);
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(format!(
            "--count must be between 1 and {MAX_COUNT}, got {count}"
        ));
    }
    Ok(backup_codes::generate(count))
}
