//! The built-in rules, one per file.

pub mod broad_managed_policy;
pub mod ci_access_policy;
pub mod ci_cluster_admin;
pub mod codedeploy_cannot_pass_task_roles;
pub mod fixed_name_replaced_first;
pub mod github_trust_unpinned;
pub mod iam_wildcard;
pub mod rds_minor_version_pinned;
pub mod service_created_log_group;
pub mod unencrypted_storage;
pub mod web_identity_unpinned;
pub mod world_open_ingress;
