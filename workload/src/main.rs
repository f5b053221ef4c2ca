//! `analytics-api`: see `--help`.

use std::process::ExitCode;

use keel_workload::cli::{self, Command};
use keel_workload::config::Config;
use keel_workload::{auth, contract, server};

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("analytics-api: {e}");
            return ExitCode::from(2);
        }
    };
    let flags = match command {
        Command::Help => {
            print!("{}", cli::help());
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("analytics-api {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::MintToken { subject } => {
            return match std::env::var(contract::JWT_SECRET.name) {
                Ok(secret) if !secret.is_empty() => {
                    // Carries JWT_ISSUER and the first JWT_AUDIENCE when set, so the token
                    // passes the service's own checks.
                    let var = |v: &contract::EnvVar| {
                        std::env::var(v.name).ok().filter(|s| !s.trim().is_empty())
                    };
                    let issuer = var(&contract::JWT_ISSUER);
                    let audience = var(&contract::JWT_AUDIENCE).and_then(|a| {
                        a.split(',')
                            .map(str::trim)
                            .find(|a| !a.is_empty())
                            .map(str::to_owned)
                    });
                    println!(
                        "{}",
                        auth::mint_token_with(
                            &secret,
                            &subject,
                            3600,
                            issuer.as_deref().map(str::trim),
                            audience.as_deref()
                        )
                    );
                    ExitCode::SUCCESS
                }
                _ => {
                    eprintln!(
                        "analytics-api: --mint-token needs {} set",
                        contract::JWT_SECRET.name
                    );
                    ExitCode::from(2)
                }
            };
        }
        Command::Run(flags) => flags,
    };
    let config = match Config::from_env(flags.dev) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("analytics-api: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log_filter))
        .with_writer(std::io::stdout)
        .init();
    if config.jwt_secret.is_none() {
        eprintln!(
            "analytics-api: --dev: JWT_SECRET is not set; /v1/* is served WITHOUT authentication"
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("analytics-api: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server::run(config, flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "fatal");
            eprintln!("analytics-api: {e}");
            ExitCode::FAILURE
        }
    }
}
