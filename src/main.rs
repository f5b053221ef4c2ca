//! The `keel` binary: parse arguments, run, map the outcome to an exit code
//! (0 ok, 2 user error, 1 internal error).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = keel::cli::Cli::parse();
    match keel::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprint!("error: {e:#}");
            if !e.to_string().ends_with('\n') {
                eprintln!();
            }
            ExitCode::from(e.exit_code())
        }
    }
}
