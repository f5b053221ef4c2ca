//! The built-in rules, one per file.

pub mod broad_managed_policy;
pub mod fixed_name_replaced_first;
pub mod iam_wildcard;
pub mod rds_minor_version_pinned;
pub mod service_created_log_group;
pub mod unencrypted_storage;
pub mod world_open_ingress;
