//! `keel preflight` against a local moto_server (STS GetCallerIdentity): the right account,
//! a wrong account, a wrong region, and no credentials at all; the external dependencies
//! in `preflight/dependencies.rs`.
//!
//! moto_server is found through `MOTO_SERVER`, `.venv-tools/bin/moto_server`, or `PATH`;
//! without it the test prints SKIPPED, except under `CI=true`, where it fails.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
#[path = "preflight/dependencies.rs"]
mod dependencies;

/// The prod environment's account (environments/prod.yaml).
const PROD_ACCOUNT: &str = "111122223333";

fn moto_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MOTO_SERVER").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let venv = common::repo().join(".venv-tools/bin/moto_server");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("moto_server"))
        .find(|p| p.is_file())
}

/// A moto_server on 127.0.0.1, stopped (by its own process handle) when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto(account: &str) -> Option<Moto> {
    let Some(bin) = moto_binary() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "moto_server is not installed but CI=true: `.venv-tools/bin/pip install \"moto[server]==5.2.5\"` (or set MOTO_SERVER)"
        );
        eprintln!(
            "SKIPPED: moto_server not found (MOTO_SERVER, .venv-tools/bin, PATH); `pip install \"moto[server]==5.2.5\"` to run the preflight tests"
        );
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("MOTO_ACCOUNT_ID", account)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let moto = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not listen on {port} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(moto)
}

/// `keel preflight` of the repository with only the environment given here (no ~/.aws, no
/// instance metadata).
fn preflight(env: &str, home: &Path, vars: &[(&str, &str)]) -> Output {
    preflight_in(&common::repo(), env, home, vars)
}

/// `keel preflight` of the project at `root`, as [`preflight`].
fn preflight_in(root: &Path, env: &str, home: &Path, vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keel"));
    cmd.arg("--root")
        .arg(root)
        .args(["preflight", env])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"));
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("the keel binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn preflight_checks_account_region_and_credentials_against_sts() {
    let Some(moto) = start_moto(PROD_ACCOUNT) else {
        return;
    };
    let home = tempfile::tempdir().expect("tempdir");
    let creds = [
        ("AWS_ENDPOINT_URL", moto.url.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ];

    // The repository's prod with no stacks, so its one external dependency is the state
    // bucket, which exists.
    let bare = dependencies::without_stacks("prod");
    dependencies::create_state_bucket(&moto.url, "acme-keel-tfstate-prod");
    let ok = preflight_in(bare.path(), "prod", home.path(), &creds);
    let out = text(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{out}{}", text(&ok.stderr));
    assert!(
        out.contains(&format!("caller:  arn:aws:sts::{PROD_ACCOUNT}:")),
        "{out}"
    );
    assert!(out.contains("region:  us-east-1"), "{out}");

    let wrong = preflight("staging", home.path(), &creds);
    let err = text(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "is in account {PROD_ACCOUNT}, but environments/staging.yaml says account_id 444455556666"
        )),
        "{err}"
    );

    let mut elsewhere = creds;
    elsewhere[3] = ("AWS_REGION", "eu-west-1");
    let region = preflight("prod", home.path(), &elsewhere);
    let err = text(&region.stderr);
    assert_eq!(region.status.code(), Some(2), "{err}");
    assert!(err.contains("set AWS_REGION=us-east-1"), "{err}");

    let none = preflight(
        "prod",
        home.path(),
        &[
            ("AWS_ENDPOINT_URL", moto.url.as_str()),
            ("AWS_REGION", "us-east-1"),
        ],
    );
    let err = text(&none.stderr);
    assert_eq!(none.status.code(), Some(2), "{err}");
    assert!(err.contains("no usable AWS credentials"), "{err}");
}
