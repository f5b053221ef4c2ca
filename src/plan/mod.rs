//! `keel plan`: the ordered deploy steps of one environment (Terraform roots, add-on
//! installs, Kubernetes applies, one-off jobs, waits), derived from the stacks.

pub mod model;

pub use model::{Action, Capability, External, Install, Reach, Source, StackStep, Wait};
