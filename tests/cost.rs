//! The monthly cost estimate: every stack keel emits is priced (nothing unpriced), the stack
//! pages carry it, and `keel diff` shows how an edit to an environment file moves it.

use std::path::Path;

use keel::cost::Estimate;

use crate::common;
use crate::common::keel_at as keel;

/// The estimate of a rendered stack, from its files.
fn estimate(o: &keel::ops::synth::Output) -> Estimate {
    let files: keel::diff::FileTree = o
        .files
        .iter()
        .map(|(p, body)| (p.clone(), body.as_bytes().to_vec()))
        .collect();
    Estimate::of_parsed(&keel::diff::parse(&files)).expect("a stack with Terraform resources")
}

#[test]
fn every_resource_keel_emits_is_priced_free_or_usage_based() {
    for o in common::outputs() {
        let e = estimate(&o);
        let unpriced: Vec<String> = e
            .unpriced()
            .iter()
            .map(|l| format!("{}: {:?}", l.address, l.pricing))
            .collect();
        assert!(unpriced.is_empty(), "{}/{}: {unpriced:#?}", o.env, o.stack);
        assert!(e.monthly_usd() > 0.0, "{}/{}", o.env, o.stack);
        // The page carries the same total.
        let page = &o.files[Path::new("README.md")];
        let total = format!("**{} per month**", keel::cost::usd(e.monthly_usd()));
        assert!(page.contains(&total), "{}/{}: {total}", o.env, o.stack);
    }
}

#[test]
fn prod_platform_costs_what_its_parts_cost() {
    // 1 EKS control plane in extended support (1.34 until prod moves to 1.35), 3 NAT
    // gateways and their 3 addresses, 3 m6i.xlarge nodes with 100 GB gp3 each, 1 KMS key:
    // the rest of the platform is free or usage-based.
    let o = common::output("prod", "platform");
    let e = estimate(&o);
    let nodes = common::of_type(&o, "aws_eks_node_group");
    let desired = nodes[0]["scaling_config"][0]["desired_size"]
        .as_f64()
        .expect("a literal");
    let expected = 0.60 * 730.0
        + 3.0 * 0.045 * 730.0
        + 3.0 * 0.005 * 730.0
        + desired * (0.192 * 730.0 + 100.0 * 0.08)
        + common::of_type(&o, "aws_kms_key").len() as f64 * 1.0
        + common::of_type(&o, "aws_cloudwatch_metric_alarm").len() as f64 * 0.10
        + common::of_type(&o, "aws_cloudwatch_composite_alarm").len() as f64 * 0.50
        + common::of_type(&o, "aws_cloudwatch_dashboard").len() as f64 * 3.0
        + common::of_type(&o, "aws_secretsmanager_secret").len() as f64 * 0.40;
    assert!(
        (e.monthly_usd() - expected).abs() < 1e-6,
        "{} vs {expected}",
        e.monthly_usd()
    );
}

/// Replaces `from` by `to` in the `stack`'s section of `file`, once.
fn edit_in_section(file: &Path, stack: &str, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).expect("read");
    let start = text
        .find(&format!("\n  {stack}:\n"))
        .unwrap_or_else(|| panic!("no section {stack}"));
    let at = start
        + text[start..]
            .find(from)
            .unwrap_or_else(|| panic!("{from:?}"));
    let edited = format!("{}{to}{}", &text[..at], &text[at + from.len()..]);
    std::fs::write(file, edited).expect("write");
}

#[test]
fn diff_shows_the_cost_of_doubling_replicas_and_the_database_size() {
    let tmp = common::temp_project();
    let root = tmp.path();
    common::synth_and_commit(root, "prod");

    let file = root.join("environments/prod.yaml");
    edit_in_section(&file, "langgraph-platform", "desired: 2", "desired: 4");
    edit_in_section(
        &file,
        "langgraph-platform",
        "instance_class: db.r6g.large",
        "instance_class: db.r6g.xlarge",
    );
    let out = keel(
        root,
        &[
            "diff",
            "prod",
            "--stack",
            "langgraph-platform",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let cost = &report["stacks"][0]["cost"];
    let lines = cost["lines"].as_array().expect("lines");
    let line = |address: &str| -> (f64, f64) {
        let l = lines
            .iter()
            .find(|l| l[0] == address)
            .unwrap_or_else(|| panic!("{address} not in {lines:#?}"));
        (
            l[1].as_f64().expect("before"),
            l[2].as_f64().expect("after"),
        )
    };
    // Two more 1 vCPU / 2 GB Fargate tasks: the service's cost doubles.
    let (before, after) = line("aws_ecs_service.app");
    assert!((after - 2.0 * before).abs() < 1e-6, "{before} -> {after}");
    assert!((before - 2.0 * (0.04048 + 2.0 * 0.004445) * 730.0).abs() < 1e-6);
    // db.r6g.large -> xlarge, Multi-AZ: twice the instance-hour difference.
    let (before, after) = line("aws_db_instance.main");
    assert!(
        (after - before - 2.0 * (0.45 - 0.225) * 730.0).abs() < 1e-6,
        "{before} -> {after}"
    );
    let delta =
        cost["after_usd"].as_f64().expect("after") - cost["before_usd"].as_f64().expect("before");
    let expected = 2.0 * (0.04048 + 2.0 * 0.004445) * 730.0 + 2.0 * (0.45 - 0.225) * 730.0;
    assert!((delta - expected).abs() < 1e-6, "{delta} vs {expected}");

    // The text and markdown reports carry it too.
    let text = keel(root, &["diff", "prod", "--stack", "langgraph-platform"]);
    let text = String::from_utf8_lossy(&text.stdout);
    let change = format!("(+{})", keel::cost::usd(expected));
    assert!(
        text.contains("  cost     ") && text.contains(&change),
        "{text}"
    );
    let md = keel(
        root,
        &[
            "diff",
            "prod",
            "--stack",
            "langgraph-platform",
            "--format",
            "markdown",
        ],
    );
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(
        md.contains("**Monthly cost estimate**")
            && md.contains(&format!("+{}", keel::cost::usd(expected))),
        "{md}"
    );
}
