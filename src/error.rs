//! keel's top-level error: user errors (exit 2) versus internal ones (exit 1).

use crate::env::EnvErrors;
use crate::stack::StackError;

/// Everything an operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One or more environment files are invalid.
    #[error("{0}")]
    Env(#[from] EnvErrors),
    /// One or more stacks refused an environment: one per line, each line after the first
    /// with its own `error: ` (`main` writes the first one's).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\nerror: "))]
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
    /// A deploy step's command failed (`keel plan --exec`): exit 4.
    #[error("{0}")]
    Step(String),
    /// Reading or writing files failed, or keel itself is wrong.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// The process exit code: 2 for user errors, 1 for internal ones, 3 for a failed gate,
    /// 4 for a failed deploy step. A file or folder keel may not read or write (`EACCES`,
    /// `EPERM`, a read-only file system) is the user's to fix, so it is 2 wherever it
    /// happened; the message names the path, since every `std::fs` call carries it as
    /// context.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Internal(e) if denied(e) => 2,
            Error::Internal(_) => 1,
            Error::Gate(_) => 3,
            Error::Step(_) => 4,
            _ => 2,
        }
    }
}

/// Whether an I/O error in `e`'s chain is a permission failure.
fn denied(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_failures_are_the_users_to_fix() {
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let e = Error::Internal(anyhow::Error::new(denied).context("creating generated/x"));
        assert_eq!(e.exit_code(), 2);
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert_eq!(Error::Internal(anyhow::Error::new(full)).exit_code(), 1);
    }

    #[test]
    fn each_stack_error_is_prefixed_once() {
        let e = Error::Stacks(vec![
            StackError::new("a", "prod", "x".to_owned()),
            StackError::new("b", "prod", "y".to_owned()),
        ]);
        let text = format!("error: {e}");
        assert_eq!(text.matches("error: ").count(), 2, "{text}");
        assert!(!text.contains("error: error:"), "{text}");
    }
}
