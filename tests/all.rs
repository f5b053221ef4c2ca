//! Every integration test of keel in one test binary: one link instead of one per file.
//! Each file beside this one is a module here (`cargo test --test all <file>::` runs one),
//! except `preflight.rs`, which needs the `aws` feature and stays its own binary. A new
//! test file must be listed below: `every_test_file_is_a_module` fails until it is.

mod common;

#[path = "adopt.rs"]
mod adopt;
#[path = "boundary.rs"]
mod boundary;
#[path = "build_features.rs"]
mod build_features;
#[path = "cluster_stacks.rs"]
mod cluster_stacks;
#[path = "concurrency.rs"]
mod concurrency;
#[path = "cost.rs"]
mod cost;
#[path = "day2_review.rs"]
mod day2_review;
#[path = "diff.rs"]
mod diff;
#[path = "environments.rs"]
mod environments;
#[path = "gate_judge.rs"]
mod gate_judge;
#[path = "hcl.rs"]
mod hcl;
#[path = "hostile.rs"]
mod hostile;
#[path = "issue19_data.rs"]
mod issue19_data;
#[path = "issue19_mysql.rs"]
mod issue19_mysql;
#[path = "issue19_rollout.rs"]
mod issue19_rollout;
#[path = "issue19_tls.rs"]
mod issue19_tls;
#[path = "issue_22_inputs.rs"]
mod issue_22_inputs;
#[path = "observability.rs"]
mod observability;
#[path = "output.rs"]
mod output;
#[path = "plan.rs"]
mod plan;
#[path = "platform.rs"]
mod platform;
#[path = "production_review.rs"]
mod production_review;
#[path = "promote.rs"]
mod promote;
#[path = "reach.rs"]
mod reach;
#[path = "review19_aws.rs"]
mod review19_aws;
#[path = "review_gate.rs"]
mod review_gate;
#[path = "rollout.rs"]
mod rollout;
#[path = "rollout_order.rs"]
mod rollout_order;
#[path = "schema_cache.rs"]
mod schema_cache;
#[path = "slo.rs"]
mod slo;
#[path = "snapshots.rs"]
mod snapshots;
#[path = "stacks.rs"]
mod stacks;
#[path = "typed_bodies.rs"]
mod typed_bodies;
#[path = "whatsthecraic.rs"]
mod whatsthecraic;
#[path = "widening.rs"]
mod widening;
#[path = "workflows.rs"]
mod workflows;

/// Every `tests/*.rs` of keel and of the workload is a module of its crate's `all.rs` (or
/// a binary of its own in the manifest), so that `autotests = false` cannot leave a new
/// test file silently unbuilt.
#[test]
fn every_test_file_is_a_module() {
    let root = common::repo();
    for (dir, own_binaries) in [
        ("tests", &["all", "preflight"][..]),
        ("workload/tests", &["all"][..]),
    ] {
        let all = std::fs::read_to_string(root.join(dir).join("all.rs")).expect("all.rs reads");
        let entries = std::fs::read_dir(root.join(dir)).expect("the tests directory reads");
        let mut missing = Vec::new();
        for entry in entries {
            let path = entry.expect("a directory entry reads").path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let is_test_file = path.extension().is_some_and(|e| e == "rs");
            let is_test_dir = path.join("main.rs").is_file();
            if !(is_test_file || is_test_dir) || own_binaries.contains(&stem) {
                continue;
            }
            if !all.contains(&format!("\nmod {stem};\n")) {
                missing.push(path.display().to_string());
            }
            // A module declaring `mod common;` compiles the helpers a second time.
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                !text.lines().any(|l| l == "mod common;"),
                "{}: write `use crate::common;`, not `mod common;` (all.rs declares it once)",
                path.display()
            );
        }
        assert!(
            missing.is_empty(),
            "{dir}/all.rs does not list {missing:?}: add `#[path = \"<file>.rs\"] mod <file>;`"
        );
    }
}
