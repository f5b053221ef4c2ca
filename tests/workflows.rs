//! Issue 23: the workflows build keel at most once per commit they judge or deploy, from a
//! cache, and pass the binary on rather than building it again.

use serde_json::Value;

use crate::common;

const WORKFLOWS: [&str; 4] = ["ci.yml", "deploy.yml", "pr.yml", "promote.yml"];

fn workflow(name: &str) -> Value {
    let path = common::repo().join(".github/workflows").join(name);
    let text = std::fs::read_to_string(&path).expect("the workflow is committed");
    serde_saphyr::from_str(&text).expect("the workflow is YAML")
}

fn steps(job: &Value) -> Vec<&Value> {
    job["steps"]
        .as_array()
        .map(|s| s.iter().collect())
        .unwrap_or_default()
}

fn uses(step: &Value, action: &str) -> bool {
    step["uses"]
        .as_str()
        .is_some_and(|u| u.starts_with(&format!("{action}@")))
}

/// The commit a step builds keel from, when it builds keel: `base` for a build of the base
/// checkout, `head` for the workflow's own commit (`.ci/run` builds it too).
fn builds(step: &Value) -> Option<&'static str> {
    let run = step["run"].as_str()?;
    let cargo = ["cargo build", "cargo run", "cargo test"]
        .iter()
        .any(|c| run.contains(c))
        || run.contains(".ci/run");
    if !cargo {
        return None;
    }
    Some(if run.contains("--manifest-path base/") {
        "base"
    } else {
        "head"
    })
}

#[test]
fn every_workflow_builds_keel_at_most_once_per_commit_and_from_a_cache() {
    for name in WORKFLOWS {
        let wf = workflow(name);
        let jobs = wf["jobs"].as_object().expect("jobs");
        let mut built: Vec<(&str, String)> = Vec::new();
        for (job_name, job) in jobs {
            let steps = steps(job);
            for (i, step) in steps.iter().enumerate() {
                let Some(commit) = builds(step) else { continue };
                assert!(
                    !built.iter().any(|(c, _)| *c == commit),
                    "{name}: job {job_name} builds keel of the {commit} commit again (first in {:?})",
                    built.iter().find(|(c, _)| *c == commit).map(|(_, j)| j)
                );
                built.push((commit, job_name.clone()));
                assert!(
                    steps[..i].iter().any(|s| uses(s, "Swatinem/rust-cache")),
                    "{name}: job {job_name} builds keel without restoring the cargo cache first"
                );
            }
        }
    }
}

#[test]
fn the_base_commits_keel_is_built_once_per_base_commit() {
    let wf = workflow("pr.yml");
    let judge = &wf["jobs"]["judge"];
    let steps = steps(judge);
    let cache = steps
        .iter()
        .find(|s| uses(s, "actions/cache"))
        .expect("the judge restores the base's keel from a cache");
    let key = cache["with"]["key"].as_str().expect("a cache key");
    assert!(
        key.contains("github.event.pull_request.base.sha"),
        "the base keel's cache is keyed on the base commit: {key}"
    );
    let id = cache["id"].as_str().expect("the cache step has an id");
    let build = steps
        .iter()
        .find(|s| builds(s) == Some("base"))
        .expect("the judge builds the base keel on a cache miss");
    let guard = build["if"].as_str().unwrap_or_default();
    assert!(
        guard.contains(&format!("steps.{id}.outputs.cache-hit != 'true'")),
        "the base keel is built only on a cache miss: if: {guard:?}"
    );
}

#[test]
fn deploy_jobs_after_the_plan_download_keel_instead_of_building_it() {
    let wf = workflow("deploy.yml");
    for (job_name, job) in wf["jobs"].as_object().expect("jobs") {
        let steps = steps(job);
        let runs_keel = steps.iter().any(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("target/debug/keel"))
        });
        if job_name == "plan" || !runs_keel {
            continue;
        }
        assert!(
            steps.iter().any(|s| uses(s, "actions/download-artifact")),
            "deploy.yml: job {job_name} runs keel without downloading the plan job's binary"
        );
        assert!(
            steps.iter().all(|s| builds(s).is_none()),
            "deploy.yml: job {job_name} builds keel again"
        );
    }
    // The plan job's binary is the one preflight needs: built with the aws feature.
    let plan_build = steps(&wf["jobs"]["plan"])
        .into_iter()
        .find_map(|s| s["run"].as_str().filter(|r| r.contains("cargo build")))
        .expect("the plan job builds keel");
    assert!(plan_build.contains("--features aws"), "{plan_build}");
}
