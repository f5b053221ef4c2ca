//! The external dependencies `keel preflight` checks, against moto_server on 127.0.0.1 and
//! small HTTP servers on loopback: every kind missing at once (each line saying how to
//! create it), then every kind present.
//!
//! moto 5.2.5 has no CodeConnections: against moto that check is reported unreachable
//! (tested as such); its AVAILABLE and PENDING answers come from a loopback stub speaking
//! the service's protocol (Smithy RPC v2 CBOR), so the real SDK parses them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use keel::ops::Project;
use keel::ops::external::{Clients, Context, Report, Verdict, check, declared, describe};
use keel::plan::External;

use super::{PROD_ACCOUNT, common, preflight, start_moto, text};

/// A self-signed certificate (CN=preflight.test, valid 2026-2126) and its key, made for this
/// test with `openssl req -x509 -newkey rsa:2048 -nodes -days 36500`: moto imports it as
/// an ISSUED certificate. Not a secret: it protects nothing.
const TEST_CERT: &str = include_str!("acm-test-cert.pem");
const TEST_KEY: &str = include_str!("acm-test-key.pem");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// An AWS configuration that talks to moto at `url` with dummy credentials.
fn moto_config(url: &str) -> aws_config::SdkConfig {
    runtime().block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load(),
    )
}

/// Creates a versioned bucket in moto at `url`.
pub fn create_state_bucket(url: &str, bucket: &str) {
    let s3 = aws_sdk_s3::Client::new(&moto_config(url));
    runtime().block_on(async {
        s3.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("CreateBucket");
        s3.put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("PutBucketVersioning");
    });
}

/// A project holding only `environments/<env>.yaml` of the repository with no stacks, so
/// its only external dependency is the state bucket.
pub fn without_stacks(env: &str) -> tempfile::TempDir {
    let original = std::fs::read_to_string(
        common::repo()
            .join("environments")
            .join(format!("{env}.yaml")),
    )
    .expect("the environment file");
    let mut kept = String::new();
    let mut in_stacks = false;
    for line in original.lines() {
        if line.starts_with("stacks:") {
            in_stacks = true;
            continue;
        }
        if in_stacks && (line.is_empty() || line.starts_with(' ') || line.starts_with('#')) {
            continue;
        }
        in_stacks = false;
        kept.push_str(line);
        kept.push('\n');
    }
    kept.push_str("stacks: {}\n");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("environments")).expect("environments/");
    std::fs::write(
        dir.path().join("environments").join(format!("{env}.yaml")),
        kept,
    )
    .expect("writing the environment");
    dir
}

/// A loopback HTTP server that answers every request with `status`, `headers` and `body`,
/// until the test ends; its base URL.
fn serve(
    status: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: Vec<u8>,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            // Read the request head and body, so the client sees a whole exchange.
            let mut reader = BufReader::new(&mut stream);
            let mut length = 0usize;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut request_body = vec![0; length];
            let _ = reader.read_exact(&mut request_body);
            let mut response = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                response.push_str(&format!("{k}: {v}\r\n"));
            }
            response.push_str("\r\n");
            let _ = stream.write_all(response.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    url
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// CBOR of a text string (RFC 8949 major type 3), for lengths below 256.
fn cbor_str(out: &mut Vec<u8>, s: &str) {
    let len = u8::try_from(s.len()).expect("a short string");
    if len < 24 {
        out.push(0x60 | len);
    } else {
        out.extend([0x78, len]);
    }
    out.extend(s.as_bytes());
}

/// A CodeConnections ListConnections answer (RPC v2 CBOR) holding one connection `name`
/// in `status`, or none.
fn list_connections_answer(connection: Option<(&str, &str)>) -> Vec<u8> {
    let mut out = vec![0xa1]; // a map of one pair
    cbor_str(&mut out, "Connections");
    match connection {
        None => out.push(0x80),
        Some((name, status)) => {
            out.extend([0x81, 0xa2]); // an array of one map of two pairs
            cbor_str(&mut out, "ConnectionName");
            cbor_str(&mut out, name);
            cbor_str(&mut out, "ConnectionStatus");
            cbor_str(&mut out, status);
        }
    }
    out
}

/// A CodeConnections stub answering ListConnections with `connection`.
fn connections_stub(connection: Option<(&str, &str)>) -> String {
    serve(
        "200 OK",
        &[
            ("Content-Type", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
        ],
        list_connections_answer(connection),
    )
}

/// Clients for moto at `moto`, with CodeConnections at `connections` (moto has none).
fn clients(moto: &str, connections: &str) -> Clients {
    let config = moto_config(moto);
    let mut clients = Clients::new(&config);
    clients.connections = aws_sdk_codeconnections::Client::from_conf(
        aws_sdk_codeconnections::config::Builder::from(&config)
            .endpoint_url(connections)
            .build(),
    );
    clients
}

fn context() -> Context {
    Context {
        env: "prod".into(),
        region: "us-east-1".into(),
        state_region: "us-east-1".into(),
    }
}

fn run(clients: &Clients, dependencies: &[External]) -> Report {
    runtime().block_on(check(
        clients,
        &context(),
        dependencies,
        Duration::from_secs(10),
    ))
}

/// The line of `report` about `dependency`.
fn line<'r>(report: &'r str, dependency: &External) -> &'r str {
    let named = format!(" {}: ", describe(dependency));
    report
        .lines()
        .find(|l| l.contains(&named))
        .unwrap_or_else(|| panic!("no line for {named:?} in\n{report}"))
}

#[test]
fn preflight_reports_every_missing_dependency_at_once_then_passes_once_they_exist() {
    let Some(moto) = start_moto(PROD_ACCOUNT) else {
        return;
    };
    let config = moto_config(&moto.url);
    let rt = runtime();
    let langfuse_port = closed_port();
    let langfuse = format!("http://127.0.0.1:{langfuse_port}");
    let secret_how = "sh generated/prod/whatsthecraic/deploy/secrets.sh check";

    // Things that exist but are not usable yet: a certificate waiting for DNS validation,
    // a secret without a value.
    let acm = aws_sdk_acm::Client::new(&config);
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let pending_arn = rt.block_on(async {
        secrets
            .create_secret()
            .name("keel/prod/whatsthecraic/empty")
            .send()
            .await
            .expect("CreateSecret");
        acm.request_certificate()
            .domain_name("pending.preflight.example")
            .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
            .send()
            .await
            .expect("RequestCertificate")
            .certificate_arn()
            .expect("an ARN")
            .to_owned()
    });
    let unknown_arn =
        "arn:aws:acm:us-east-1:111122223333:certificate/00000000-0000-4000-8000-000000000000";
    let missing = vec![
        External::StateBucket {
            bucket: "keel-preflight-state".into(),
        },
        External::ApplyRole {
            name: "keel-apply".into(),
        },
        External::HostedZone {
            host: "api.preflight.example".into(),
        },
        External::Certificate {
            arn: unknown_arn.into(),
        },
        External::Certificate {
            arn: pending_arn.clone(),
        },
        External::SecretValue {
            name: "keel/prod/whatsthecraic/spotify".into(),
            how: secret_how.into(),
        },
        External::SecretValue {
            name: "keel/prod/whatsthecraic/empty".into(),
            how: secret_how.into(),
        },
        External::Service {
            what: "Langfuse".into(),
            url: langfuse.clone(),
        },
        External::Connection {
            name: "keel-prod-runner".into(),
        },
    ];
    // CodeConnections against moto itself: it has no such service.
    let report = run(&clients(&moto.url, &moto.url), &missing);
    let shown = report.to_string();
    assert_eq!(report.failures(), missing.len(), "{shown}");
    let expect = [
        "create the bucket keel-preflight-state in us-east-1 with versioning and encryption: aws s3api create-bucket --bucket keel-preflight-state --region us-east-1 &&",
        "aws iam create-role --role-name keel-apply",
        "aws route53 create-hosted-zone --name preflight.example",
        "no such certificate: request one",
        "not issued yet (PENDING_VALIDATION)",
        "the secret does not exist yet; its stack's Terraform root creates it empty: apply that root, then sh generated/prod/whatsthecraic/deploy/secrets.sh check",
        "the secret has no value yet: sh generated/prod/whatsthecraic/deploy/secrets.sh check",
        &format!("unreachable from here: GET {langfuse}/api/public/health"),
        "CodeConnections ListConnections failed",
    ];
    for (dependency, words) in missing.iter().zip(expect) {
        let l = line(&shown, dependency);
        assert!(l.contains(words), "expected {words:?} in\n{l}\nof\n{shown}");
        assert!(
            l.trim_start().starts_with("MISSING") || l.trim_start().starts_with("UNREACHABLE"),
            "{l}"
        );
    }

    // A PENDING connection and a missing one, as CodeConnections answers them.
    let pending = run(
        &clients(
            &moto.url,
            &connections_stub(Some(("keel-prod-runner", "PENDING"))),
        ),
        &missing[missing.len() - 1..],
    );
    assert!(
        matches!(&pending.findings[0].verdict, Verdict::Missing(t) if t.contains("the connection is PENDING") && t.contains("Update pending connection")),
        "{pending}"
    );
    let absent = run(
        &clients(&moto.url, &connections_stub(None)),
        &missing[missing.len() - 1..],
    );
    assert!(
        matches!(&absent.findings[0].verdict, Verdict::Missing(t) if t.contains("no connection named keel-prod-runner")),
        "{absent}"
    );

    // Create everything, then every line is ok.
    let issued_arn = rt.block_on(async {
        let iam = aws_sdk_iam::Client::new(&config);
        iam.create_role()
            .role_name("keel-apply")
            .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
            .send()
            .await
            .expect("CreateRole");
        aws_sdk_route53::Client::new(&config)
            .create_hosted_zone()
            .name("preflight.example")
            .caller_reference("keel-preflight-test")
            .send()
            .await
            .expect("CreateHostedZone");
        for name in [
            "keel/prod/whatsthecraic/spotify",
            "keel/prod/whatsthecraic/empty",
        ] {
            if secrets
                .describe_secret()
                .secret_id(name)
                .send()
                .await
                .is_err()
            {
                secrets
                    .create_secret()
                    .name(name)
                    .send()
                    .await
                    .expect("CreateSecret");
            }
            secrets
                .put_secret_value()
                .secret_id(name)
                .secret_string("a value")
                .send()
                .await
                .expect("PutSecretValue");
        }
        acm.import_certificate()
            .certificate(aws_sdk_acm::primitives::Blob::new(TEST_CERT))
            .private_key(aws_sdk_acm::primitives::Blob::new(TEST_KEY))
            .send()
            .await
            .expect("ImportCertificate")
            .certificate_arn()
            .expect("an ARN")
            .to_owned()
    });
    create_state_bucket(&moto.url, "keel-preflight-state");
    let langfuse = serve(
        "200 OK",
        &[("Content-Type", "application/json")],
        br#"{"status":"OK"}"#.to_vec(),
    );
    let present = vec![
        External::StateBucket {
            bucket: "keel-preflight-state".into(),
        },
        External::ApplyRole {
            name: "keel-apply".into(),
        },
        External::HostedZone {
            host: "api.preflight.example".into(),
        },
        External::Certificate { arn: issued_arn },
        External::SecretValue {
            name: "keel/prod/whatsthecraic/spotify".into(),
            how: secret_how.into(),
        },
        External::SecretValue {
            name: "keel/prod/whatsthecraic/empty".into(),
            how: secret_how.into(),
        },
        External::Service {
            what: "Langfuse".into(),
            url: langfuse,
        },
        External::Connection {
            name: "keel-prod-runner".into(),
        },
    ];
    let report = run(
        &clients(
            &moto.url,
            &connections_stub(Some(("keel-prod-runner", "AVAILABLE"))),
        ),
        &present,
    );
    assert_eq!(report.failures(), 0, "{report}");
    assert!(
        report
            .findings
            .iter()
            .all(|f| matches!(f.verdict, Verdict::Ok(_))),
        "{report}"
    );

    // A Langfuse that answers but is not healthy, and one only the cluster can resolve.
    let unhealthy = serve("503 Service Unavailable", &[], Vec::new());
    let services = [
        External::Service {
            what: "Langfuse".into(),
            url: unhealthy,
        },
        External::Service {
            what: "Langfuse".into(),
            url: "http://langfuse-web.langfuse.svc.cluster.local:3000".into(),
        },
    ];
    let report = run(&clients(&moto.url, &moto.url), &services);
    assert!(
        matches!(&report.findings[0].verdict, Verdict::Missing(t) if t.contains("answered 503 Service Unavailable")),
        "{report}"
    );
    assert!(
        matches!(&report.findings[1].verdict, Verdict::Skipped(t) if t.contains("resolves only inside the cluster")),
        "{report}"
    );
    assert_eq!(report.failures(), 1, "{report}");
}

#[test]
fn preflight_names_every_declared_dependency_of_an_empty_account_and_exits_2() {
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
    let env = Project::new(common::repo())
        .load(&["prod".to_owned()])
        .expect("prod loads")
        .remove(0);
    let declared = declared(&env).expect("prod's stacks build");
    assert!(
        declared.contains(&External::StateBucket {
            bucket: "acme-keel-tfstate-prod".into()
        }),
        "{declared:?}"
    );

    let out = preflight("prod", home.path(), &creds);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "external dependencies are missing or could not be checked; create them as said, then run `keel preflight prod` again:"
        ),
        "{err}"
    );
    // One line per declared dependency, each failing (or skipped, for an in-cluster URL).
    for dependency in &declared {
        let l = line(&err, dependency);
        assert!(
            ["MISSING", "UNREACHABLE", "skipped"]
                .iter()
                .any(|label| l.trim_start().starts_with(label)),
            "{l}"
        );
    }
    assert!(
        line(&err, &declared[0])
            .contains("aws s3api create-bucket --bucket acme-keel-tfstate-prod"),
        "{err}"
    );
}

#[test]
fn preflight_passes_and_lists_its_dependencies_once_they_exist() {
    let Some(moto) = start_moto(PROD_ACCOUNT) else {
        return;
    };
    let home = tempfile::tempdir().expect("tempdir");
    let bare = without_stacks("prod");
    let creds = [
        ("AWS_ENDPOINT_URL", moto.url.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ];
    let before = super::preflight_in(bare.path(), "prod", home.path(), &creds);
    assert_eq!(before.status.code(), Some(2), "{}", text(&before.stderr));
    create_state_bucket(&moto.url, "acme-keel-tfstate-prod");
    let after = super::preflight_in(bare.path(), "prod", home.path(), &creds);
    let out = text(&after.stdout);
    assert_eq!(after.status.code(), Some(0), "{out}{}", text(&after.stderr));
    assert!(
        out.ends_with(
            "external dependencies (1):\n  ok           state bucket acme-keel-tfstate-prod: exists\n"
        ),
        "{out}"
    );
}

#[test]
fn the_bare_environment_keeps_everything_but_the_stacks() {
    let bare = without_stacks("prod");
    let env = Project::new(bare.path())
        .load(&["prod".to_owned()])
        .expect("prod without stacks loads")
        .remove(0);
    assert_eq!(env.spec.state.bucket, "acme-keel-tfstate-prod");
    assert_eq!(
        declared(&env).expect("no stack to build"),
        vec![External::StateBucket {
            bucket: "acme-keel-tfstate-prod".into()
        }]
    );
}
