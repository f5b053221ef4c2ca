//! Nothing to link: this crate only widens its dependencies' features to the workspace's
//! union, so that keel's build and the workspace's test build share every dependency (see
//! its Cargo.toml).
