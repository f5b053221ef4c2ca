//! Every integration test of the workload in one test binary: one link instead of one per
//! file (`cargo test -p keel-workload --test all <file>::` runs one). A new test file must be
//! listed below: keel's `every_test_file_is_a_module` checks both crates.

mod common;

#[path = "http.rs"]
mod http;
#[path = "process.rs"]
mod process;
#[path = "rollups.rs"]
mod rollups;
#[path = "serve.rs"]
mod serve;
