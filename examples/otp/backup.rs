//! `otp backup-codes`.

use std::process::ExitCode;

pub fn run(_args: &[String]) -> ExitCode {
    eprintln!("otp backup-codes: not implemented yet");
    ExitCode::from(2)
}
