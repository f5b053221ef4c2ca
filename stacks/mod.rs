//! The reference stacks, one module each. A stack is a function from a validated
//! environment to a [`Stack`](crate::stack::Stack); it only wires constructs together.
//!
//! Each stack's environment settings are a `Settings` struct in its own file; the one
//! registry below makes both [`ALL`] and the `stacks:` section of environment files
//! ([`Settings`]), so adding a stack touches its file, this registry and the environment
//! files, and the generated schema stays one file.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::stack::StackDef;

/// Declares the stacks: their modules, [`ALL`] in output order, and [`Settings`].
macro_rules! registry {
    ($($module:ident => $key:literal: $doc:literal),* $(,)?) => {
        $(pub mod $module;)*

        /// Every stack keel synthesizes, in output order.
        pub const ALL: &[StackDef] = &[$($module::DEF),*];

        /// The `stacks:` section of an environment file: a stack without settings here is
        /// not synthesized for that environment.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[schemars(rename = "Stacks")]
        pub struct Settings {
            $(
                #[doc = $doc]
                #[serde(default, rename = $key)]
                pub $module: Option<$module::Settings>,
            )*
        }

        /// Runs the semantic checks of every stack `spec` configures.
        pub(crate) fn check_settings(
            spec: &crate::env::file::EnvFile,
            out: &mut crate::env::check::Problems,
        ) {
            $(
                if let Some(settings) = &spec.stacks.$module {
                    $module::check(spec, settings, out);
                }
            )*
        }
    };
}

registry! {
    platform => "platform": "The environment's EKS cluster, its VPC and controller identities (`stacks/platform.rs`); Kubernetes stacks import what they need from it.",
    langgraph_platform => "langgraph-platform": "The agent platform on ECS Fargate (`stacks/langgraph_platform.rs`).",
    analytics_api => "analytics-api": "The analytics API on Kubernetes, with its database and cache (`stacks/analytics_api.rs`).",
    metrics_service => "metrics-service": "The trace scoring service on the platform cluster (`stacks/metrics_service.rs`).",
    aegistickets => "aegistickets": "The ticketing app (backend and frontend) on the platform cluster (`stacks/aegistickets.rs`).",
    whatsthecraic => "whatsthecraic": "Six Node.js services behind Traefik on the platform cluster (`stacks/whatsthecraic.rs`).",
}

/// The stack named `name`.
pub fn find(name: &str) -> Option<&'static StackDef> {
    ALL.iter().find(|s| s.name == name)
}
