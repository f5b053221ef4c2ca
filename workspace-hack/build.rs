//! Empty: a package needs a build script for its build-dependencies to be resolved, and
//! this crate exists only for what its manifest resolves (see Cargo.toml).
fn main() {}
