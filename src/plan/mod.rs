//! `keel plan`: the ordered deploy steps of one environment (Terraform roots, add-on
//! installs, Kubernetes applies, one-off jobs, waits), derived from the stacks.
//!
//! - [`model`]: the vocabulary stacks use to declare what they install and need.
//! - [`requirements`]: what each generated Kubernetes object needs and provides.
//! - [`build`]: the steps, each after the providers of its requirements, in layers.
//! - [`resync`]: force-syncing ExternalSecrets and restarting the workloads reading them.
//! - [`render`]: the plan as text for people and JSON for the deploy workflow.

pub mod build;
pub mod model;
pub mod render;
pub mod requirements;
pub mod resync;

pub use build::{Context, Kind, Plan, Step, plan};
pub use model::{Action, Capability, External, Install, Reach, Source, StackStep, Stage, Wait};
