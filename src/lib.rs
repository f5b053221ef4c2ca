//! keel: typed Rust stacks + per-environment YAML → Terraform JSON and Kubernetes YAML.
pub mod refs;
pub mod tf;
pub mod construct;
pub mod env;
