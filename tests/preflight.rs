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
    let mut cmd = common::keel_command();
    cmd.arg("--root")
        .arg(root)
        .args(["preflight", env])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(
            keel::env::kubernetes_support::TODAY_VARIABLE,
            keel::env::kubernetes_support::TESTED_ON.to_string(),
        )
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

/// Writes an AWS config file into `home` and returns its path.
fn aws_config(home: &Path, body: &str) -> PathBuf {
    let path = home.join("aws-config");
    std::fs::write(&path, body).expect("write the AWS config");
    path
}

/// The one line a failed preflight prints, asserting there is exactly one and no SDK dump.
fn one_line_error(out: &Output) -> String {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "one line, not an SDK dump: {err}");
    for dump in ["DispatchFailure", "ConnectorError", "ProviderError", "{ "] {
        assert!(!err.contains(dump), "{dump} in {err}");
    }
    err
}

#[test]
fn issue_22_bug_14_an_sso_profile_without_a_token_says_how_to_sign_in() {
    let home = tempfile::tempdir().expect("tempdir");
    let config = aws_config(
        home.path(),
        "[profile corp-admin]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\nregion = us-east-1\n\n\
         [sso-session corp]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\n\n\
         [profile legacy]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\nsso_account_id = 111122223333\nsso_role_name = Admin\nregion = us-east-1\n",
    );
    let config = config.to_str().expect("UTF-8 path");
    for profile in ["corp-admin", "legacy"] {
        let out = preflight(
            "prod",
            home.path(),
            &[
                ("AWS_CONFIG_FILE", config),
                ("AWS_PROFILE", profile),
                // Nothing may leave the machine: every AWS endpoint is a closed local port.
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ],
        );
        let err = one_line_error(&out);
        assert!(
            err.contains(&format!(
                "the AWS SSO sign-in of profile {profile} has no valid cached token"
            )) && err.contains(&format!("run `aws sso login --profile {profile}`")),
            "{err}"
        );
    }
}

#[test]
fn issue_22_bug_14_a_credential_process_profile_is_used() {
    let Some(moto) = start_moto(PROD_ACCOUNT) else {
        return;
    };
    let home = tempfile::tempdir().expect("tempdir");
    let script = home.path().join("credentials.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"testing\", \"SecretAccessKey\": \"testing\"}'\n",
    )
    .expect("write the script");
    let mut perms = std::fs::metadata(&script).expect("script").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).expect("chmod");
    let config = aws_config(
        home.path(),
        &format!(
            "[profile tool]\ncredential_process = {}\nregion = us-east-1\n\n\
             [profile broken]\ncredential_process = {}\nregion = us-east-1\n",
            script.display(),
            home.path().join("missing.sh").display()
        ),
    );
    let config = config.to_str().expect("UTF-8 path");
    let vars = |profile| {
        [
            ("AWS_CONFIG_FILE", config),
            ("AWS_PROFILE", profile),
            ("AWS_ENDPOINT_URL", moto.url.as_str()),
        ]
    };

    // The repository's prod with no stacks and its state bucket made: what is left to
    // pass is the caller's identity, which only the credential_process can give.
    let bare = dependencies::without_stacks("prod");
    dependencies::create_state_bucket(&moto.url, "acme-keel-tfstate-prod");
    let ok = preflight_in(bare.path(), "prod", home.path(), &vars("tool"));
    let out = text(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{out}{}", text(&ok.stderr));
    assert!(
        out.contains(&format!("caller:  arn:aws:sts::{PROD_ACCOUNT}:")),
        "{out}"
    );

    let err = one_line_error(&preflight("prod", home.path(), &vars("broken")));
    assert!(
        err.contains("the credential_process of profile broken failed")
            && err.contains("missing.sh"),
        "{err}"
    );
}

#[test]
fn issue_22_preflight_errors_are_one_readable_line() {
    let home = tempfile::tempdir().expect("tempdir");

    let none = one_line_error(&preflight(
        "prod",
        home.path(),
        &[("AWS_ENDPOINT_URL", "http://127.0.0.1:1")],
    ));
    assert!(
        none.contains("error: preflight prod: no usable AWS credentials"),
        "{none}"
    );

    let config = aws_config(home.path(), "[profile other]\nregion = us-east-1\n");
    let missing = one_line_error(&preflight(
        "prod",
        home.path(),
        &[
            ("AWS_CONFIG_FILE", config.to_str().expect("UTF-8 path")),
            ("AWS_PROFILE", "nosuch"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
        ],
    ));
    assert!(
        missing.contains(
            "AWS_PROFILE names the profile nosuch, which the AWS config files do not define"
        ),
        "{missing}"
    );

    // A port nothing listens on: the endpoint and the reason, once.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let refused = one_line_error(&preflight(
        "prod",
        home.path(),
        &[
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
        ],
    ));
    assert!(
        refused.contains(&format!("cannot reach AWS STS at {endpoint}"))
            && refused.contains("connection refused"),
        "{refused}"
    );
}
