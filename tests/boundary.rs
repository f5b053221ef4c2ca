//! Issue 22: what keel reads and writes stays inside the project, and errors never echo what
//! they read. A pull request can commit symbolic links, FIFOs and huge files; each must be
//! refused (or, for the schema record, ignored) quickly, naming the path, with nothing written
//! or deleted outside the project.

use crate::common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A secret-looking string planted in inputs: it must never reach stderr or stdout.
const SECRET: &str = "ghp_S3cr3tT0k3nThatMustNeverBePrinted";

/// `keel --root ROOT ARGS` with the schema record on (no `CI`), killed after `limit`.
fn keel_within(root: &Path, args: &[&str], limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = common::keel_command()
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("CI")
        .env_remove("KEEL_SCHEMA_CACHE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keel starts");
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("killed");
            panic!(
                "keel {args:?} still ran after {limit:?} (killed): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    (child.wait_with_output().expect("output"), elapsed)
}

fn keel(root: &Path, args: &[&str]) -> Output {
    keel_within(root, args, Duration::from_secs(120)).0
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn everything(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).expect("symlink");
}

/// A project with `generated/` synthesized.
fn synthesized() -> tempfile::TempDir {
    let project = common::temp_project();
    let out = keel(project.path(), &["synth", "--all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    project
}

#[test]
fn issue22_bug2_a_symlinked_environment_file_is_refused_and_not_echoed() {
    let project = common::temp_project();
    let root = project.path();
    let outside = tempfile::tempdir().expect("tempdir");
    let credentials = outside.path().join(".git-credentials");
    std::fs::write(&credentials, format!("https://user:{SECRET}@github.com\n")).expect("write");
    symlink(&credentials, &root.join("environments/leak.yaml"));
    for args in [&["check"][..], &["list"], &["synth", "--all"]] {
        let out = keel(root, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("environments/leak.yaml") && err.contains("symbolic link"),
            "{args:?}: {err}"
        );
        assert!(!everything(&out).contains(SECRET), "{args:?}: {err}");
    }
    assert!(!root.join("generated").exists(), "nothing written");

    // A symlinked environments/ folder that leaves the project.
    std::fs::remove_file(root.join("environments/leak.yaml")).expect("rm");
    let elsewhere = outside.path().join("envs");
    std::fs::rename(root.join("environments"), &elsewhere).expect("move");
    symlink(&elsewhere, &root.join("environments"));
    let out = keel(root, &["list"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("environments") && err.contains("outside the project"),
        "{err}"
    );
}

#[test]
fn issue22_bug2_a_value_of_the_wrong_type_is_named_not_echoed() {
    let project = common::temp_project();
    let root = project.path();
    let dev = root.join("environments/dev.yaml");
    let text = std::fs::read_to_string(&dev).expect("dev.yaml");
    // A string where a number, a pattern, an enum value and a mapping are expected.
    let bad = text
        .replacen("    replicas: 1\n", &format!("    replicas: {SECRET}\n"), 1)
        .replacen(
            "account_id: \"123456789012\"",
            &format!("account_id: \"{SECRET}\""),
            1,
        )
        .replacen("tier: dev", &format!("tier: {SECRET}"), 1);
    assert_ne!(bad, text);
    std::fs::write(&dev, bad).expect("write");
    // A whole file that is one string (what a credentials file parses as).
    std::fs::write(
        root.join("environments/staging.yaml"),
        format!("https://user:{SECRET}@github.com\n"),
    )
    .expect("write");
    let out = keel(root, &["check"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!everything(&out).contains(SECRET), "{err}");
    assert!(!err.contains("ghp_"), "{err}");
    for expected in [
        "environments/dev.yaml:5:13: account_id: expected a string matching ^[0-9]{12}$",
        "environments/dev.yaml:4:7: tier: expected one of dev, staging, prod, found another string",
        "stacks.analytics-api.replicas: expected an integer, found a string",
        "environments/staging.yaml:1:1: expected a mapping, found a string",
    ] {
        assert!(err.contains(expected), "{expected}\n{err}");
    }
}

#[test]
fn issue22_errors_place_out_of_range_numbers_at_their_key() {
    let project = common::temp_project();
    let root = project.path();
    let dev = root.join("environments/dev.yaml");
    let text = std::fs::read_to_string(&dev).expect("dev.yaml");
    let line = text
        .lines()
        .position(|l| l == "    replicas: 1")
        .expect("a replicas line")
        + 1;
    std::fs::write(
        &dev,
        text.replacen("    replicas: 1\n", "    replicas: 1e23\n", 1),
    )
    .expect("write");
    let out = keel(root, &["check"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "environments/dev.yaml:{line}:15: stacks.analytics-api.replicas: expected u32"
        )),
        "{err}"
    );
}

#[test]
fn issue22_stack_errors_say_error_once() {
    let project = common::temp_project();
    let root = project.path();
    // Two environments in one account that both create its GitHub OIDC provider.
    let staging = root.join("environments/staging.yaml");
    let text = std::fs::read_to_string(&staging).expect("staging.yaml");
    std::fs::write(&staging, text.replace("444455556666", "123456789012")).expect("write");
    let out = keel(root, &["synth", "--all"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("error: error:"), "{err}");
}

/// Creates `path` as a FIFO (`mkfifo`).
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

#[test]
fn issue22_bug7_a_hostile_schema_record_means_no_record() {
    let records = ".keel/schema-valid";
    type Make = fn(&Path);
    let cases: [(&str, Make); 4] = [
        ("a FIFO", mkfifo),
        ("a link to /dev/zero", |p| {
            symlink(Path::new("/dev/zero"), p)
        }),
        ("a 5 GiB sparse file", |p| {
            std::fs::File::create(p)
                .and_then(|f| f.set_len(5 << 30))
                .expect("sparse file");
        }),
        ("a folder", |p| std::fs::create_dir(p).expect("mkdir")),
    ];
    for (what, make) in cases {
        let project = common::temp_project();
        let root = project.path();
        std::fs::create_dir_all(root.join(records)).expect("mkdir");
        make(&root.join(records).join("prod"));
        let (out, took) = keel_within(root, &["synth", "--all"], Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
        let (out, took_check) = keel_within(root, &["check"], Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
        eprintln!("{what}: synth {took:?}, check {took_check:?}");
    }
    // `.keel/` itself a link out of the project: neither read nor written through.
    let project = common::temp_project();
    let root = project.path();
    let outside = tempfile::tempdir().expect("tempdir");
    symlink(outside.path(), &root.join(".keel"));
    let out = keel(root, &["synth", "prod"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_dir(outside.path()).expect("dir").count(),
        0,
        "nothing written through the link"
    );
}

#[test]
fn issue22_bug8_one_stack_synth_writes_the_same_readme_as_all() {
    let project = synthesized();
    let root = project.path();
    let readme = root.join("generated/prod/platform/README.md");
    let before = std::fs::read(&readme).expect("README");
    let out = keel(root, &["synth", "prod", "--stack", "platform"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&readme).expect("README"), before);
    let out = keel(root, &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn issue22_bug8_diff_of_one_stack_shows_no_spurious_change() {
    let project = synthesized();
    let root = project.path();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(["-c", "user.name=keel", "-c", "user.email=keel@example.com"])
            .args(args)
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "synthesized"]);
    let out = keel(root, &["diff", "prod", "--stack", "platform"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        text.starts_with("keel diff against HEAD: 0 replace risk, 0 security, 0 other"),
        "{text}"
    );
}

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((
                path.display().to_string(),
                std::fs::read(&path).expect("read"),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn issue22_bug13_synth_refuses_a_symlinked_output_folder() {
    // (link inside the project, synth arguments)
    let cases: [(&str, &[&str]); 5] = [
        ("generated", &["synth", "--all"]),
        ("generated/prod", &["synth", "prod"]),
        ("generated/prod", &["synth", "prod", "--stack", "platform"]),
        (
            "generated/prod/platform",
            &["synth", "prod", "--stack", "platform"],
        ),
        ("generated/prod/platform/terraform", &["synth", "--all"]),
    ];
    for (link, args) in cases {
        let project = synthesized();
        let root = project.path();
        // Something synth would change, so it has a reason to write.
        let prod = root.join("environments/prod.yaml");
        let text = std::fs::read_to_string(&prod).expect("prod.yaml");
        std::fs::write(
            &prod,
            text.replacen("  az_count: 3\n", "  az_count: 2\n", 1),
        )
        .expect("write");
        let outside = tempfile::tempdir().expect("tempdir");
        let target = outside.path().join("target");
        std::fs::rename(root.join(link), &target).expect("move out");
        std::fs::write(target.join("canary"), "alive\n").expect("canary");
        symlink(&target, &root.join(link));
        let before = files(outside.path());
        let out = keel(root, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{link} {args:?}: {err}");
        assert!(
            err.contains(link) && err.contains("symbolic link"),
            "{link} {args:?}: {err}"
        );
        assert_eq!(files(outside.path()), before, "{link} {args:?}");
        // check does not compare through the link either: the tree is not what synth writes.
        let out = keel(root, &["check"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{link}: {err}");
        assert!(
            err.contains(&format!("{link} is a symbolic link"))
                || err.contains(&format!("{link} is not produced by synth")),
            "{link}: {err}"
        );
        assert!(
            std::fs::symlink_metadata(root.join(link))
                .expect("link")
                .file_type()
                .is_symlink()
        );
    }
}

#[test]
fn issue22_a_killed_synths_staging_folder_does_not_fail_check() {
    let project = synthesized();
    let root = project.path();
    let leftovers = [
        root.join("generated/.prod.keel-new-4194303"),
        root.join("generated/prod/.platform.keel-new-4194303"),
    ];
    for dir in &leftovers {
        std::fs::create_dir_all(dir.join("terraform")).expect("mkdir");
        std::fs::write(dir.join("terraform/main.tf.json"), "{\n").expect("write");
    }
    let out = keel(root, &["check"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("generated/.prod.keel-new-4194303") && err.contains("interrupted synth"),
        "{err}"
    );
    // The next synth, under the exclusive lock, removes them, even for one stack.
    let out = keel(root, &["synth", "dev", "--stack", "platform"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for dir in &leftovers {
        assert!(!dir.exists(), "{} removed", dir.display());
    }
}

/// Issue 23: the everyday build leaves the AWS SDK out; `keel preflight` in such a build
/// says how to get one that talks to AWS, exits 2 and touches nothing.
#[cfg(not(feature = "aws"))]
#[test]
fn issue23_preflight_without_the_aws_feature_says_how_to_build_it() {
    let project = common::temp_project();
    let out = keel(project.path(), &["preflight", "prod"]);
    assert_eq!(out.status.code(), Some(2), "{}", everything(&out));
    let text = stderr(&out);
    assert!(
        text.contains("built without AWS access")
            && text.contains("cargo run --features aws -- preflight prod"),
        "{text}"
    );
    assert!(!project.path().join("generated").exists());
}
