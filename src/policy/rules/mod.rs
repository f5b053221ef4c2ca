//! The built-in rules, one per file.

pub mod iam_wildcard;
pub mod unencrypted_storage;
pub mod world_open_ingress;
