//! keel's top-level error: user errors (exit 2) versus internal ones (exit 1).

use crate::env::EnvErrors;
use crate::stack::StackError;

/// Everything an operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One or more environment files are invalid.
    #[error("{0}")]
    Env(#[from] EnvErrors),
    /// One or more stacks refused an environment.
    #[error("{}", .0.iter().map(|e| format!("error: {e}")).collect::<Vec<_>>().join("\n"))]
    Stacks(Vec<StackError>),
    /// The command named something that does not exist.
    #[error("{0}")]
    Usage(String),
    /// `generated/` differs from what synth would write.
    #[error("generated/ is stale; run `cargo run -- synth --all` and commit the result:\n{}", .0.iter().map(|f| format!("  {f}")).collect::<Vec<_>>().join("\n"))]
    Stale(Vec<String>),
    /// A check the user asked for found something (`keel diff --fail-on`): exit 3.
    #[error("{0}")]
    Gate(String),
    /// Reading or writing files failed, or keel itself is wrong.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// The process exit code: 2 for user errors, 1 for internal ones, 3 for a failed gate.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Internal(_) => 1,
            Error::Gate(_) => 3,
            _ => 2,
        }
    }
}
