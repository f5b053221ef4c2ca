//! Adoption: the `adopt:` section of an environment file becomes Terraform `import` blocks,
//! checked at synth with located errors; `keel adopt` proposes entries from a state.

use std::path::Path;

use crate::common;
use crate::common::keel_at as keel;

fn append(root: &Path, text: &str) -> usize {
    let file = root.join("environments/dev.yaml");
    let before = std::fs::read_to_string(&file).expect("dev.yaml");
    std::fs::write(&file, format!("{before}{text}")).expect("write");
    before.lines().count()
}

#[test]
fn synth_writes_import_blocks_for_adopted_resources() {
    let tmp = common::temp_project();
    let root = tmp.path();
    append(
        root,
        "adopt:\n  platform:\n    aws_vpc.main: vpc-0a1b2c3d4e5f60718\n    aws_subnet.private_a: subnet-0a1b2c3d\n",
    );
    let out = keel(root, &["synth", "dev", "--stack", "platform"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let imports =
        std::fs::read_to_string(root.join("generated/dev/platform/terraform/imports.tf.json"))
            .expect("imports.tf.json");
    let doc: serde_json::Value = serde_json::from_str(&imports).expect("JSON");
    assert_eq!(
        doc["import"],
        serde_json::json!([
            {"id": "subnet-0a1b2c3d", "to": "aws_subnet.private_a"},
            {"id": "vpc-0a1b2c3d4e5f60718", "to": "aws_vpc.main"}
        ])
    );
}

#[test]
fn every_bad_adoption_is_reported_with_file_key_and_line() {
    let tmp = common::temp_project();
    let root = tmp.path();
    let n = append(
        root,
        "adopt:\n  platform:\n    aws_vpc.main: vpc-0a1b2c3d4e5f60718\n    aws_subnet.nope: subnet-0a1b2c3d\n    aws_security_group.deploy_runner: subnet-0a1b2c3e\n    aws_subnet.private_a: subnet-0a1b2c3f\n    aws_subnet.private_b: subnet-0a1b2c3f\n  nostack:\n    aws_vpc.x: vpc-0a1b2c3d\n",
    );
    let out = keel(root, &["synth", "dev"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let at = |line: usize, col: usize| format!("environments/dev.yaml:{}:{col}: ", n + line);
    for expected in [
        format!(
            "{}adopt.nostack: expected a stack this environment builds",
            at(9, 5)
        ),
        format!(
            "{}adopt.platform.aws_subnet.nope: expected a resource address of stack platform, found one it does not have; its aws_subnet addresses: aws_subnet.data_a",
            at(4, 22)
        ),
        format!(
            "{}adopt.platform.aws_security_group.deploy_runner: expected a security group id, sg- and 8 or 17 hex digits, found a value of another shape",
            at(5, 39)
        ),
        format!(
            "{}adopt.platform.aws_subnet.private_b: this id is already adopted by adopt.platform.aws_subnet.private_a",
            at(7, 27)
        ),
    ] {
        assert!(err.contains(&expected), "missing {expected}\nin:\n{err}");
    }
    assert!(
        !root.join("generated").exists(),
        "nothing is written on error"
    );
}

#[test]
fn adopt_proposes_entries_from_a_state_and_says_what_it_could_not_match() {
    let tmp = common::temp_project();
    let root = tmp.path();
    let state = serde_json::json!({"version": 4, "resources": [
        {"mode": "managed", "type": "aws_vpc", "name": "legacy", "instances": [{"attributes": {
            "id": "vpc-0a1b2c3d4e5f60718", "cidr_block": "10.120.0.0/16", "tags": {"Name": "eks-dev-vpc"}}}]},
        {"mode": "managed", "type": "aws_subnet", "name": "a", "instances": [{"attributes": {
            "id": "subnet-0a1b2c3d", "cidr_block": "10.120.128.0/20", "availability_zone": "us-east-1a"}}]},
        {"mode": "managed", "type": "aws_subnet", "name": "elsewhere", "instances": [{"attributes": {
            "id": "subnet-0a1b2c3e", "cidr_block": "192.168.0.0/24"}}]}
    ]});
    let file = root.join("state.json");
    std::fs::write(&file, state.to_string()).expect("write");
    let out = keel(
        root,
        &[
            "adopt",
            "dev",
            "--from",
            file.to_str().expect("UTF-8"),
            "--stack",
            "platform",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("adopt:\n  platform:\n    aws_subnet.private_a: subnet-0a1b2c3d  # aws_subnet.a, by cidr_block, availability_zone\n    aws_vpc.main: vpc-0a1b2c3d4e5f60718  # aws_vpc.legacy, by cidr_block, tags.Name\n"), "{text}");
    assert!(text.contains("#   platform aws_subnet.data_a: no existing aws_subnet has cidr_block = 10.120.112.0/24"), "{text}");
    assert!(text.contains("#   aws_subnet.elsewhere: no keel aws_subnet has the same cidr_block and availability_zone and tags.Name"), "{text}");

    let bad = root.join("bad.json");
    std::fs::write(&bad, "{\"x\": 1}").expect("write");
    let out = keel(
        root,
        &["adopt", "dev", "--from", bad.to_str().expect("UTF-8")],
    );
    assert_eq!(out.status.code(), Some(2));
}
