//! The `poolsim` binary: parse argv, call the app, map errors to exit codes
//! (0 ok, 1 runtime failure, 2 invalid input, 3 `compare` past a tolerance; a closed stdout pipe
//! is not an error).

use clap::Parser;
use poolsim::app;
use poolsim::cli::Cli;
use poolsim::experiment::Invalid;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match app::main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            if let Some(inv) = e.downcast_ref::<Invalid>() {
                eprint!("{inv}");
                return ExitCode::from(2);
            }
            if let Some(t) = e.downcast_ref::<app::ToleranceExceeded>() {
                eprintln!("poolsim: {t}");
                return ExitCode::from(3);
            }
            if let Some(u) = e.downcast_ref::<app::UsageError>() {
                eprintln!("error: {u}");
                return ExitCode::from(2);
            }
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}
