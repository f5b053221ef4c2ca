//! Runs that share one project: two synths cannot interleave, and a read-only or full
//! `generated/` fails clearly and leaves the previous tree as it was.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use keel::ops::lock::{Mode, lock};
use keel::render::read_tree;

fn keel(root: &Path) -> Command {
    let mut command = common::keel_command();
    command.arg("--root").arg(root);
    command
}

fn run(root: &Path, args: &[&str]) -> std::process::Output {
    keel(root).args(args).output().expect("keel runs")
}

/// What `generated/` holds besides the environment folders: leftovers of a swap.
fn leftovers(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("generated"))
        .expect("generated/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !["dev", "staging", "prod"].contains(&n.as_str()))
        .collect();
    names.sort();
    names
}

/// Several whole-tree synths started together all succeed, one after another, and leave
/// exactly what one synth writes. (Without the lock they delete each other's staging
/// folders and fail, or leave a mixed tree.)
#[test]
fn concurrent_synths_take_turns() {
    let project = common::temp_project();
    let root = project.path();
    let children: Vec<_> = (0..4)
        .map(|_| {
            keel(root)
                .args(["synth", "--all"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("keel starts")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("keel ends");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let check = run(root, &["check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(leftovers(root), Vec::<String>::new());
}

/// A synth that finds the project locked says so and writes nothing until the lock is free.
#[test]
fn a_second_synth_waits_for_the_lock_and_says_so() {
    let project = common::temp_project();
    let root = project.path();
    let held = lock(root, Mode::Exclusive, |_| panic!("nobody else holds it")).expect("lock");
    let mut child = keel(root)
        .args(["synth", "--all"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keel starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("a line on stderr");
    assert!(
        line.starts_with(&format!(
            "waiting for another keel run on {}",
            root.display()
        )),
        "{line}"
    );
    // It is blocked before reading anything, so nothing is written while the lock is held.
    assert!(!root.join("generated").exists());
    drop(held);
    let status = child.wait().expect("keel ends");
    assert!(status.success());
    assert!(run(root, &["check"]).status.success());
}

/// `check` takes the lock shared: it waits for a synth rather than reading a tree mid-swap.
#[test]
fn check_waits_for_a_running_synth() {
    let project = common::temp_project();
    let root = project.path();
    assert!(run(root, &["synth", "--all"]).status.success());
    let held = lock(root, Mode::Exclusive, |_| panic!("free")).expect("lock");
    let mut child = keel(root)
        .arg("check")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keel starts");
    let mut line = String::new();
    BufReader::new(child.stderr.take().expect("piped"))
        .read_line(&mut line)
        .expect("a line");
    assert!(line.starts_with("waiting for another keel run"), "{line}");
    drop(held);
    assert!(child.wait().expect("ends").success());
}

/// Makes `dir` refuse new entries and renames, for root too: the immutable attribute
/// (`chattr +i`) where the test runs as root, who ignores permission bits, else mode 0555.
struct ReadOnly(std::path::PathBuf, bool);

impl ReadOnly {
    fn new(dir: &Path) -> Self {
        let uid = Command::new("id").arg("-u").output().expect("id runs");
        let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        if root {
            let status = Command::new("chattr").arg("+i").arg(dir).status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "chattr +i {} (needs e2fsprogs and a file system with attributes)",
                dir.display()
            );
        } else {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).expect("chmod");
        }
        ReadOnly(dir.to_owned(), root)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.1 {
            let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        } else {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
        }
    }
}

/// A changed environment that synth cannot write: staging needs new entries in `generated/`.
fn change_prod(root: &Path) {
    let prod = root.join("environments/prod.yaml");
    let text = std::fs::read_to_string(&prod).expect("read");
    std::fs::write(
        &prod,
        text.replacen("  az_count: 3\n", "  az_count: 2\n", 1),
    )
    .expect("write");
}

#[test]
fn a_read_only_generated_folder_fails_clearly_and_changes_nothing() {
    let project = common::temp_project();
    let root = project.path();
    assert!(run(root, &["synth", "--all"]).status.success());
    change_prod(root);
    let before = read_tree(&root.join("generated")).expect("read");
    {
        let _guard = ReadOnly::new(&root.join("generated"));
        let out = run(root, &["synth", "--all"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // A permission failure is the user's to fix: exit 2, naming the path (issue 22).
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.starts_with("error: creating "), "{stderr}");
        assert!(stderr.contains("/generated/.prod.keel-new-"), "{stderr}");
        assert!(
            stderr.contains("Operation not permitted") || stderr.contains("Permission denied"),
            "{stderr}"
        );
    }
    assert_eq!(read_tree(&root.join("generated")).expect("read"), before);
    assert_eq!(leftovers(root), Vec::<String>::new());
    // One stack's folder: its parent is read-only.
    {
        let _guard = ReadOnly::new(&root.join("generated/prod"));
        let out = run(root, &["synth", "prod", "--stack", "langgraph-platform"]);
        assert_eq!(out.status.code(), Some(2));
    }
    assert_eq!(read_tree(&root.join("generated")).expect("read"), before);
}

/// A full disk, for root as for anyone: the file size limit (`ulimit -f`, with SIGXFSZ
/// ignored so a write past it fails with EFBIG instead of killing the process). Every file of
/// dev and staging fits and prod's provider file (made larger by a long tag) does not: all or
/// nothing, so dev and staging are not replaced either.
#[test]
fn a_full_disk_fails_clearly_and_changes_nothing() {
    let project = common::temp_project();
    let root = project.path();
    assert!(run(root, &["synth", "--all"]).status.success());
    let before = read_tree(&root.join("generated")).expect("read");
    let largest = before.values().map(Vec::len).max().expect("files");
    let limit_kib = largest / 1024 + 2;
    // Changes every environment's output, and makes prod's main.tf.json too large (with
    // tags AWS accepts: values of at most 256 characters).
    for env in ["dev", "staging", "prod"] {
        let file = root.join(format!("environments/{env}.yaml"));
        let text = std::fs::read_to_string(&file).expect("read");
        let tags = if env == "prod" {
            let value = "x".repeat(256);
            (0..=limit_kib * 4)
                .map(|i| format!("  owner{i}: {value}\n"))
                .collect()
        } else {
            "  owner: platform\n".to_owned()
        };
        std::fs::write(
            &file,
            text.replacen("alerts:", &format!("tags:\n{tags}alerts:"), 1),
        )
        .expect("write");
    }
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"trap "" XFSZ; ulimit -f "$0"; exec "$@""#)
        .arg(limit_kib.to_string())
        .arg(env!("CARGO_BIN_EXE_keel"))
        .arg("--root")
        .arg(root)
        .args(["synth", "--all"])
        .env(
            keel::env::kubernetes_support::TODAY_VARIABLE,
            keel::env::kubernetes_support::TESTED_ON.to_string(),
        )
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: writing "), "{stderr}");
    assert!(stderr.contains("/generated/.prod.keel-new-"), "{stderr}");
    assert!(stderr.contains("File too large"), "{stderr}");
    assert_eq!(read_tree(&root.join("generated")).expect("read"), before);
    assert_eq!(leftovers(root), Vec::<String>::new());
    // With room, the same synth goes through.
    assert!(run(root, &["synth", "--all"]).status.success());
    assert_ne!(read_tree(&root.join("generated")).expect("read"), before);
}
