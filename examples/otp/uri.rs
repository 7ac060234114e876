//! `otp uri`, `otp parse`, `otp qr`.

use std::process::ExitCode;

pub fn run(command: &str, _args: &[String]) -> ExitCode {
    eprintln!("otp {command}: not implemented yet");
    ExitCode::from(2)
}
