//! TLS to RDS, from one place: every client verifies the server's certificate and host
//! name (`sslmode=verify-full`) against the RDS certificate authorities, and this module
//! says where each client finds them.
//!
//! The CA bundle is AWS's global bundle (every region's RDS root CAs). A client gets it in
//! one of two ways:
//!
//! - [`CaBundle::InImage`]: the image carries it (analytics-api's image adds it at build
//!   time at the workload contract's path);
//! - [`CaBundle::Fetched`]: the task or Job downloads it before it connects, over HTTPS
//!   from AWS's trust store ([`TRUSTSTORE_URL`], whose own certificate the image's public
//!   roots verify), and refuses a file without a certificate: the database login steps
//!   (the PostgreSQL client image carries no RDS CA) and the ECS app, through a
//!   non-essential `rds-ca` container the app waits for ([`super::ecs`]).

/// AWS's global RDS CA bundle.
pub const TRUSTSTORE_URL: &str =
    "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem";

/// Where a fetched bundle is written in the ECS app's shared task volume.
pub const FETCHED_DIR: &str = "/etc/rds-ca";

/// Where a client finds the RDS CA bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaBundle {
    /// The image carries it at this path.
    InImage(&'static str),
    /// The client fetches it at start into this file.
    Fetched(&'static str),
}

impl CaBundle {
    /// The bundle's path in the client's file system.
    pub fn path(self) -> &'static str {
        match self {
            CaBundle::InImage(p) | CaBundle::Fetched(p) => p,
        }
    }
}

/// The ECS app's bundle: fetched into [`FETCHED_DIR`] by its `rds-ca` container.
pub const ECS_APP_BUNDLE: CaBundle = CaBundle::Fetched("/etc/rds-ca/global-bundle.pem");

/// The login steps' bundle: fetched into their writable `/tmp`.
pub const LOGIN_STEP_BUNDLE: CaBundle = CaBundle::Fetched("/tmp/rds-global-bundle.pem");

/// The libpq query of a connection URL: full verification against `ca`.
pub fn url_query(ca: CaBundle) -> String {
    format!("sslmode=verify-full&sslrootcert={}", ca.path())
}

/// The query of a client that encrypts without verifying the server: only aegistickets'
/// backend and its exporter, whose pods cannot fetch the bundle before they start (the pod
/// builder has no init containers yet) and whose images do not carry it.
pub const ENCRYPT_ONLY_QUERY: &str = "sslmode=require";

/// libpq's environment for the same verification (`PGSSLMODE`, `PGSSLROOTCERT`).
pub fn libpq_env(ca: CaBundle) -> [(&'static str, &'static str); 2] {
    [("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", ca.path())]
}

/// POSIX shell lines that download the bundle to `dest` and fail unless it holds a
/// certificate (busybox `wget`, as in the Alpine client image).
pub fn fetch_lines(dest: &str) -> String {
    format!(
        "wget -q -T 20 -O {dest} {TRUSTSTORE_URL}\ngrep -q 'BEGIN CERTIFICATE' {dest} || {{ echo 'the RDS CA bundle from {TRUSTSTORE_URL} holds no certificate' >&2; exit 1; }}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_query_verifies_host_and_chain() {
        assert_eq!(
            url_query(CaBundle::InImage("/etc/ssl/certs/rds-global-bundle.pem")),
            "sslmode=verify-full&sslrootcert=/etc/ssl/certs/rds-global-bundle.pem"
        );
        assert_eq!(
            libpq_env(LOGIN_STEP_BUNDLE)[0],
            ("PGSSLMODE", "verify-full")
        );
        assert!(ECS_APP_BUNDLE.path().starts_with(FETCHED_DIR));
    }

    #[test]
    fn the_fetch_is_valid_shell_that_fails_without_a_certificate() {
        let script = format!("set -eu\n{}", fetch_lines("/tmp/ca.pem"));
        let status = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(&script)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(script.contains("grep -q 'BEGIN CERTIFICATE' /tmp/ca.pem ||"));
    }
}
