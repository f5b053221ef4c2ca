//! The `keel` binary: parse arguments, run, map the outcome to an exit code
//! (0 ok, 2 user error, 1 internal error, 3 a gate that found something, 4 a failed deploy
//! step).

use std::process::ExitCode;

use clap::Parser;

/// keel allocates many small strings and maps and exits soon after: mimalloc serves them
/// with fewer instructions and page faults than the system allocator (scripts/bench-synth.sh).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
