//! keel's typed Terraform bindings for hashicorp/aws: the generated builders and references
//! ([`aws`], written by tfgen), their runtime ([`bind`]), and the expression types they
//! return ([`expr`]). keel re-exports them as `keel::tf::{aws, bind}` and `keel::refs`.
//!
//! A crate of its own so that editing a stack or construct does not re-check the ~27k
//! generated lines. Nothing here writes `${`: keel's `refs` renders expressions.

pub mod aws;
pub mod bind;
pub mod expr;
