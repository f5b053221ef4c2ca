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
//!   (neither client image, PostgreSQL or MySQL, carries the RDS CA; MySQL's verifies with
//!   [`mysql_options`]); the ECS app, through a non-essential `rds-ca` container the app
//!   waits for ([`super::ecs`]); a Kubernetes pod, through an `rds-ca` init container
//!   filling a read-only emptyDir ([`fetch_in_pod`]).
//!
//! No client encrypts without verifying: there is no `sslmode=require` query to build.

use super::db_client::POSTGRES_CLIENT_IMAGE;
use crate::k8s;

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

/// An app's fetched bundle, in [`FETCHED_DIR`]: filled by the ECS task's `rds-ca`
/// container, or by a pod's `rds-ca` init container ([`fetch_in_pod`]).
pub const APP_BUNDLE: CaBundle = CaBundle::Fetched("/etc/rds-ca/global-bundle.pem");

/// Name of the container that fetches [`APP_BUNDLE`].
pub const FETCH_CONTAINER: &str = "rds-ca";

/// The login steps' bundle: fetched into their writable `/tmp`.
pub const LOGIN_STEP_BUNDLE: CaBundle = CaBundle::Fetched("/tmp/rds-global-bundle.pem");

/// The libpq query of a connection URL: full verification against `ca`.
pub fn url_query(ca: CaBundle) -> String {
    format!("sslmode=verify-full&sslrootcert={}", ca.path())
}

/// libpq's environment for the same verification (`PGSSLMODE`, `PGSSLROOTCERT`).
pub fn libpq_env(ca: CaBundle) -> [(&'static str, &'static str); 2] {
    [("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", ca.path())]
}

/// POSIX shell lines that download the bundle to `dest` and fail unless it holds a
/// certificate (busybox `wget`, as in the Alpine client image).
pub fn fetch_lines(dest: &str) -> String {
    fetch_lines_with(Downloader::Wget, dest)
}

/// The HTTP client a client image carries to fetch the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Downloader {
    /// busybox `wget` (the Alpine PostgreSQL image).
    Wget,
    /// `curl` (the MySQL image: Oracle Linux slim, no busybox).
    Curl,
}

/// [`fetch_lines`] with `downloader`.
pub fn fetch_lines_with(downloader: Downloader, dest: &str) -> String {
    let get = match downloader {
        Downloader::Wget => format!("wget -q -T 20 -O {dest} {TRUSTSTORE_URL}"),
        Downloader::Curl => format!("curl -fsS --max-time 20 -o {dest} {TRUSTSTORE_URL}"),
    };
    format!(
        "{get}\ngrep -q 'BEGIN CERTIFICATE' {dest} || {{ echo 'the RDS CA bundle from {TRUSTSTORE_URL} holds no certificate' >&2; exit 1; }}\n"
    )
}

/// The image that fetches the bundle: the login steps' PostgreSQL client image (Alpine,
/// busybox `wget`), by its digest (the digest decides what runs; the tag only names it).
pub fn fetch_image() -> k8s::Image {
    let (name, digest) = POSTGRES_CLIENT_IMAGE
        .split_once('@')
        .unwrap_or((POSTGRES_CLIENT_IMAGE, ""));
    let repo = match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    };
    k8s::Image::Digest {
        repo: repo.to_owned(),
        digest: digest.to_owned(),
    }
}

/// Gives a Kubernetes service [`APP_BUNDLE`] before its app starts: the `rds-ca` init
/// container fetches it into [`FETCHED_DIR`] (an emptyDir the app mounts read-only), and
/// the pods may reach HTTPS outside `vpc_cidr`, for the trust store is a CDN without fixed
/// addresses. The app's client then verifies against [`APP_BUNDLE`] ([`url_query`],
/// [`libpq_env`]).
pub fn fetch_in_pod(props: &mut k8s::ServiceProps, vpc_cidr: &str) {
    props.init_containers.push(k8s::InitContainer {
        name: FETCH_CONTAINER.to_owned(),
        image: fetch_image(),
        script: fetch_lines(APP_BUNDLE.path()),
        resources: k8s::Resources {
            requests_cpu: "10m".into(),
            requests_memory: "16Mi".into(),
            limits_cpu: "100m".into(),
            limits_memory: "32Mi".into(),
        },
        fills: k8s::WritableDir::new(FETCHED_DIR, "1Mi"),
    });
    let public = props
        .network
        .public_https
        .get_or_insert_with(|| k8s::PublicHttps { except: Vec::new() });
    if !public.except.iter().any(|c| c == vpc_cidr) {
        public.except.push(vpc_cidr.to_owned());
    }
}

/// The `mysql` client's options for the same verification as [`url_query`]: the server's
/// certificate chain against `ca` and its host name (`VERIFY_IDENTITY`; `VERIFY_CA` would
/// accept any RDS instance's certificate).
pub fn mysql_options(ca: CaBundle) -> String {
    format!("--ssl-mode=VERIFY_IDENTITY --ssl-ca={}", ca.path())
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
        assert!(APP_BUNDLE.path().starts_with(FETCHED_DIR));
        assert_eq!(
            fetch_image().reference(),
            POSTGRES_CLIENT_IMAGE.replace(":17-alpine@", "@")
        );
        assert!(fetch_image().validate().is_ok());
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
        let curl = fetch_lines_with(Downloader::Curl, "/tmp/ca.pem");
        assert!(curl.starts_with("curl -fsS --max-time 20 -o /tmp/ca.pem https://"));
        assert!(curl.contains("\ngrep -q 'BEGIN CERTIFICATE' /tmp/ca.pem ||"));
    }

    #[test]
    fn mysql_verifies_host_and_chain() {
        assert_eq!(
            mysql_options(LOGIN_STEP_BUNDLE),
            "--ssl-mode=VERIFY_IDENTITY --ssl-ca=/tmp/rds-global-bundle.pem"
        );
    }
}
