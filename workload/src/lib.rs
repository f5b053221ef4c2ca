//! The analytics API: ingests LLM/application trace events and serves aggregates.
//!
//! This crate is the service that keel's `analytics-api` stack deploys. Its deployment
//! contract (ports, probe paths, environment variables, resources) lives in the
//! dependency-free [`keel_workload_contract`] crate, re-exported here as [`contract`]; the
//! server reads its configuration through those constants, so manifests cannot drift from
//! the binary.
//!
//! Entry points: [`config::Config::from_env`] validates the environment, [`api::app`] builds
//! the HTTP router (tested in process), and [`server::run`] serves it with graceful shutdown.
#![deny(missing_docs)]

pub use keel_workload_contract as contract;

pub mod api;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
pub mod connections;
pub mod event;
pub mod limits;
pub mod metrics;
pub mod server;
pub mod sketch;
pub mod stats;
pub mod store;
pub mod timed_io;
