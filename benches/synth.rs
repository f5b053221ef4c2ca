//! Loading and synthesizing each environment in memory (no disk writes): environment file
//! → schema and semantic validation → every stack → rendered bytes.

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use keel::ops::Project;
use keel::ops::synth::{Selection, build};

fn synth(c: &mut Criterion) {
    let project = Project::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    for env in ["dev", "staging", "prod"] {
        let selection = Selection {
            envs: vec![env.to_owned()],
            stack: None,
        };
        c.bench_function(&format!("load+synth {env}"), |b| {
            b.iter(|| build(&project, &selection).expect("environment builds"))
        });
    }
    let all = Selection::default();
    c.bench_function("load+synth all environments", |b| {
        b.iter(|| build(&project, &all).expect("builds"))
    });
}

criterion_group!(benches, synth);
criterion_main!(benches);
