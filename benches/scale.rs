//! Scale of the in-memory path (load, build, policy, render; nothing written) at about 1k,
//! 5k, 10k and 20k Terraform resources, in two shapes:
//!
//! - many roots: N environments, each a copy of `environments/staging.yaml` under its own name
//!   (the recipe of `scripts/scale-fixture.sh`), so every stack and its Kubernetes objects
//!   are built N times;
//! - one root: the prod langgraph-platform root with its blocks copied under new names until
//!   it holds N resources, run through the policy rules and the Terraform renderer.
//!
//! Throughput is in resources, so criterion prints the cost per resource at each size: a flat
//! figure across sizes is linear growth.

use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use keel::ops::Project;
use keel::ops::synth::{Selection, build};

const SIZES: [usize; 4] = [1_000, 5_000, 10_000, 20_000];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Writes `n` environments `s0001..` into `root/environments`.
fn fixture(root: &Path, n: usize) {
    let envs = root.join("environments");
    std::fs::create_dir_all(&envs).expect("mkdir");
    let staging =
        std::fs::read_to_string(repo().join("environments/staging.yaml")).expect("staging.yaml");
    for i in 1..=n {
        let name = format!("s{i:04}");
        let mut text = staging.replacen("\nname: staging\n", &format!("\nname: {name}\n"), 1);
        if i > 1 {
            // One GitHub OIDC provider per account: the first environment owns it.
            text = text.replacen(
                "github_oidc_provider: create",
                "github_oidc_provider: existing",
                1,
            );
        }
        std::fs::write(envs.join(format!("{name}.yaml")), text).expect("write");
    }
}

fn resources(project: &Project) -> usize {
    build(project, &Selection::default())
        .expect("the fixture builds")
        .iter()
        .map(|o| o.resources)
        .sum()
}

fn many_roots(c: &mut Criterion) {
    let one = tempfile::tempdir().expect("tempdir");
    fixture(one.path(), 1);
    let per_env = resources(&Project::new(one.path()));
    let mut group = c.benchmark_group("many roots: load+build+render");
    group.sample_size(10);
    for target in SIZES {
        let dir = tempfile::tempdir().expect("tempdir");
        fixture(dir.path(), target.div_ceil(per_env));
        let project = Project::new(dir.path());
        let total = resources(&project);
        group.throughput(Throughput::Elements(total as u64));
        group.bench_with_input(BenchmarkId::from_parameter(total), &project, |b, p| {
            b.iter(|| build(p, &Selection::default()).expect("builds"))
        });
    }
    group.finish();
}

fn one_root(c: &mut Criterion) {
    let project = Project::new(repo());
    let envs = project.load(&["prod".to_owned()]).expect("prod loads");
    let stack = (keel::stacks::ALL[0].build)(&envs[0])
        .expect("builds")
        .expect("prod has the stack");
    let base = stack.terraform;
    let blocks: Vec<_> = base
        .blocks()
        .filter(|(r, _)| r.kind() == keel::refs::BlockKind::Resource)
        .map(|(r, _)| r.clone())
        .collect();
    let mut group = c.benchmark_group("one root: policy+render");
    group.sample_size(10);
    for target in SIZES {
        let mut config = base.clone();
        let mut copy = 0;
        while config.resource_count() < target {
            copy += 1;
            for r in &blocks {
                let name = format!("{}_{copy}", r.name());
                config.copy_block("copies", r, &name);
            }
        }
        let total = config.resource_count();
        group.throughput(Throughput::Elements(total as u64));
        group.bench_with_input(BenchmarkId::from_parameter(total), &config, |b, config| {
            b.iter(|| {
                let findings = keel::policy::check(config);
                (findings, config.render().expect("renders"))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, many_roots, one_root);
criterion_main!(benches);
