//! keel: typed Rust stacks + per-environment YAML → Terraform JSON and Kubernetes YAML.
//!
//! The pipeline, one direction:
//!
//! ```text
//! environments/<env>.yaml --env::load--> Env (typed, validated)
//! stacks/<name>.rs: fn(&Env) -> Stack      (constructs, typed references)
//! addons::attach: every Stack of the env -> the platform's add-on layer
//! Stack --render--> generated/<env>/<stack>/terraform/*.tf.json, k8s/*.yaml
//! ```
//!
//! Files keel reads: `environments/*.yaml`, `generated/**` and `.keel/schema-valid/*`, each
//! only as a regular file inside the project (see `inputs`). Files it writes: `generated/**`
//! (only through `render`, atomically), the schema records under `.keel/`, and the one
//! environment file `keel promote --write` edits.
#![deny(missing_docs)]

pub mod addons;
pub mod cli;
pub mod construct;
pub mod cost;
pub mod diff;
pub mod env;
pub mod error;
pub mod exports;
pub mod inputs;
pub mod k8s;
pub mod ops;
pub mod plan;
pub mod policy;
pub mod refs;
pub mod render;
pub mod rollout;
pub mod slo;
pub mod stack;
#[path = "../stacks/mod.rs"]
pub mod stacks;
pub mod tf;
