//! Kubernetes output: typed objects (k8s-openapi, one API version feature) and small typed
//! custom-resource structs, the service construct that builds them, and rendering to YAML
//! files plus a `kustomization.yaml`.
//!
//! Self-contained: uses only external crates and `super::` paths.
//!
//! # Public API
//!
//! * [`Object`]: one rendered object (kind, name, namespace, [`Rank`], JSON content).
//! * [`render()`]: `&[Object]` -> file name -> YAML text, including `kustomization.yaml`.
//! * [`service()`] with [`ServiceProps`]: the whole application bundle (Namespace with
//!   quota and limits, ServiceAccount, ConfigMap, ExternalSecret, Deployment, Service, HPA,
//!   PDB, Ingress, NetworkPolicies, ServiceMonitor).
//! * [`K8sError`]: every error, with lowercase messages saying what was found and expected.
//!
//! Invariants: nothing here does I/O; every object comes from a typed struct; selectors use
//! only `app.kubernetes.io/name` and `app.kubernetes.io/instance`.

mod error;
mod object;
mod render;

pub mod labels;

pub use error::K8sError;
pub use object::{Object, Rank, Suppression, meta};
pub use render::{HEADER, KUSTOMIZATION, render};
