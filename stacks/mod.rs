//! The reference stacks, one module each. A stack is a function from a validated
//! environment to a [`Stack`](crate::stack::Stack); it only wires constructs together.

pub mod analytics_api;
pub mod langgraph_platform;
pub mod platform;

use crate::stack::StackDef;

/// Every stack keel synthesizes, in output order.
pub const ALL: &[StackDef] = &[platform::DEF, langgraph_platform::DEF, analytics_api::DEF];

/// The stack named `name`.
pub fn find(name: &str) -> Option<&'static StackDef> {
    ALL.iter().find(|s| s.name == name)
}
