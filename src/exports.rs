//! Typed cross-stack values: one stack exports a value through a [`Handle`], another imports
//! it by the same handle.
//!
//! An export is an `aws_ssm_parameter` named `/keel/<env>/<stack>/<name>` (`String`, or
//! `StringList` for lists; never a secret); an import is a `data "aws_ssm_parameter"` with
//! that literal name. Not `terraform_remote_state`: that would let every consumer read the
//! producer's whole state, secrets included. Synth checks per environment that each import
//! has a matching export of the same shape, and orders the stacks so producers apply first
//! ([`link`]).

use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;

use crate::construct::Scope;
use crate::refs::Expr;
use crate::tf::{Suppression, aws};

/// The shape of an exported value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Shape {
    /// One string (`String` parameter).
    One,
    /// A list of strings (`StringList` parameter, comma-separated).
    List,
}

/// Marker of a single-value handle.
#[derive(Debug, Clone, Copy)]
pub struct One;
/// Marker of a list handle.
#[derive(Debug, Clone, Copy)]
pub struct List;

/// The shape a marker stands for.
pub trait ShapeOf {
    /// The shape.
    const SHAPE: Shape;
}
impl ShapeOf for One {
    const SHAPE: Shape = Shape::One;
}
impl ShapeOf for List {
    const SHAPE: Shape = Shape::List;
}

/// A value `stack` publishes under `name`; the marker says its shape, so an import gets the
/// type the export wrote.
#[derive(Debug, Clone, Copy)]
pub struct Handle<S> {
    /// The producing stack.
    pub stack: &'static str,
    /// The value's name, e.g. `vpc_id`.
    pub name: &'static str,
    shape: PhantomData<S>,
}

impl<S: ShapeOf> Handle<S> {
    /// A handle of `stack`'s value `name`.
    pub const fn new(stack: &'static str, name: &'static str) -> Self {
        Handle {
            stack,
            name,
            shape: PhantomData,
        }
    }

    /// What synth checks: producer, name, shape.
    pub fn link(&self) -> Link {
        Link {
            stack: self.stack,
            name: self.name,
            shape: S::SHAPE,
        }
    }
}

/// One end of a cross-stack value, as recorded in a Terraform root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Link {
    /// The producing stack.
    pub stack: &'static str,
    /// The value's name.
    pub name: &'static str,
    /// Its shape.
    pub shape: Shape,
}

impl Link {
    /// The SSM parameter name in `env`: `/keel/<env>/<stack>/<name>`.
    pub fn parameter(&self, env: &str) -> String {
        format!("/keel/{env}/{}/{}", self.stack, self.name)
    }
}

/// Why an export is a plain (not SecureString) parameter.
const PLAIN_PARAMETER: &str = "a non-secret identifier published for other stacks of the environment; keel never exports a secret";

/// Publishes `value` under `handle` (which must name this stack).
pub fn export_one(scope: &mut Scope<'_>, handle: &Handle<One>, description: &str, value: Expr) {
    put(scope, handle.link(), description, value);
}

/// Publishes `values` (a list) under `handle`.
pub fn export_list(
    scope: &mut Scope<'_>,
    handle: &Handle<List>,
    description: &str,
    values: &[Expr],
) {
    let items: Vec<&str> = values.iter().map(Expr::as_hcl).collect();
    let joined = Expr::raw(format!("join(\",\", [{}])", items.join(", ")));
    put(scope, handle.link(), description, joined);
}

fn put(scope: &mut Scope<'_>, link: Link, description: &str, value: Expr) {
    let parameter = link.parameter(&scope.env);
    let ty = match link.shape {
        Shape::One => "String",
        Shape::List => "StringList",
    };
    let parameter = aws::resource::SsmParameter::new(parameter, ty)
        .description(format!("keel export: {description}"))
        .value(value);
    scope.tf.add_with(
        "exports",
        &format!("export_{}", link.name),
        parameter,
        &[Suppression {
            check: "CKV2_AWS_34",
            reason: PLAIN_PARAMETER,
        }],
    );
    scope.tf.record_export(link);
}

/// Reads `handle`'s value: a string expression.
pub fn import_one(scope: &mut Scope<'_>, handle: &Handle<One>) -> Expr {
    read(scope, handle.link())
}

/// Reads `handle`'s list: a list expression.
pub fn import_list(scope: &mut Scope<'_>, handle: &Handle<List>) -> Expr {
    let value = read(scope, handle.link());
    Expr::raw(format!("split(\",\", {})", value.as_hcl()))
}

fn read(scope: &mut Scope<'_>, link: Link) -> Expr {
    let parameter = link.parameter(&scope.env);
    let local = format!("{}_{}", crate::construct::local_name(link.stack), link.name);
    let existing = crate::refs::Ref::data("aws_ssm_parameter", &local);
    // Importing a value twice reads it once.
    if scope.tf.body(&existing).is_some() {
        return existing.attr("insecure_value");
    }
    let data = scope
        .tf
        .add("imports", &local, aws::data::SsmParameter::new(parameter));
    scope.tf.record_import(link);
    // `value` is marked sensitive for every parameter type; exports are never secrets.
    data.insecure_value().into()
}

/// The exports and imports of one built stack.
#[derive(Debug, Clone, Copy)]
pub struct StackLinks<'a> {
    /// Stack name.
    pub stack: &'static str,
    /// What it exports.
    pub exports: &'a [Link],
    /// What it imports.
    pub imports: &'a [Link],
}

/// Checks one environment's stacks against each other and returns their apply order
/// (producers first; otherwise in the given order). Every problem is reported: an import
/// whose producer the environment does not synthesize, a name the producer does not
/// export, a shape mismatch, a cycle.
pub fn link(env: &str, stacks: &[StackLinks<'_>]) -> Result<Vec<&'static str>, Vec<String>> {
    let mut errors = Vec::new();
    let by_name: BTreeMap<&str, &StackLinks<'_>> = stacks.iter().map(|s| (s.stack, s)).collect();
    let mut needs: BTreeMap<&'static str, BTreeSet<&'static str>> = BTreeMap::new();
    for s in stacks {
        let deps = needs.entry(s.stack).or_default();
        for import in s.imports {
            let Some(producer) = by_name.get(import.stack) else {
                errors.push(format!(
                    "stack {} imports {} from stack {}, which this environment does not synthesize (add its settings to environments/{env}.yaml)",
                    s.stack, import.name, import.stack
                ));
                continue;
            };
            match producer.exports.iter().find(|e| e.name == import.name) {
                None => errors.push(format!(
                    "stack {} imports {} from stack {}, which exports no such value (it exports: {})",
                    s.stack,
                    import.name,
                    import.stack,
                    producer.exports.iter().map(|e| e.name).collect::<Vec<_>>().join(", ")
                )),
                Some(e) if e.shape != import.shape => errors.push(format!(
                    "stack {} imports {}/{} as {:?}, but it is exported as {:?}",
                    s.stack, import.stack, import.name, import.shape, e.shape
                )),
                Some(_) => {
                    if import.stack != s.stack {
                        deps.insert(import.stack);
                    }
                }
            }
        }
    }
    // Kahn's algorithm, taking the first ready stack in the given order each time.
    let mut order = Vec::new();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    while order.len() < stacks.len() {
        let ready = stacks
            .iter()
            .find(|s| !done.contains(s.stack) && needs[s.stack].iter().all(|d| done.contains(d)));
        match ready {
            Some(s) => {
                done.insert(s.stack);
                order.push(s.stack);
            }
            None => {
                let cycle: Vec<&str> = stacks
                    .iter()
                    .map(|s| s.stack)
                    .filter(|s| !done.contains(s))
                    .collect();
                errors.push(format!(
                    "stacks {} import each other's values in a cycle, so no apply order exists",
                    cycle.join(", ")
                ));
                break;
            }
        }
    }
    if errors.is_empty() {
        Ok(order)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VPC: Link = Link {
        stack: "platform",
        name: "vpc_id",
        shape: Shape::One,
    };
    const SUBNETS: Link = Link {
        stack: "platform",
        name: "subnets",
        shape: Shape::List,
    };

    fn stack<'a>(stack: &'static str, exports: &'a [Link], imports: &'a [Link]) -> StackLinks<'a> {
        StackLinks {
            stack,
            exports,
            imports,
        }
    }

    #[test]
    fn producers_apply_first() {
        let order = link(
            "prod",
            &[
                stack("api", &[], &[VPC, SUBNETS]),
                stack("platform", &[VPC, SUBNETS], &[]),
                stack("other", &[], &[]),
            ],
        )
        .unwrap();
        assert_eq!(order, ["platform", "api", "other"]);
        assert_eq!(VPC.parameter("prod"), "/keel/prod/platform/vpc_id");
    }

    #[test]
    fn every_broken_link_is_named() {
        let wrong_shape = Link {
            shape: Shape::List,
            ..VPC
        };
        let missing = Link {
            name: "cluster_nmae",
            ..VPC
        };
        let errors = link(
            "prod",
            &[
                stack("api", &[], &[wrong_shape, missing]),
                stack("platform", &[VPC], &[]),
            ],
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "stack api imports platform/vpc_id as List, but it is exported as One",
                "stack api imports cluster_nmae from stack platform, which exports no such value (it exports: vpc_id)",
            ]
        );
        let errors = link("dev", &[stack("api", &[], &[VPC])]).unwrap_err();
        assert_eq!(
            errors,
            [
                "stack api imports vpc_id from stack platform, which this environment does not synthesize (add its settings to environments/dev.yaml)"
            ]
        );
    }

    #[test]
    fn cycles_are_refused_naming_the_stacks() {
        let a = Link {
            stack: "a",
            name: "x",
            shape: Shape::One,
        };
        let b = Link {
            stack: "b",
            name: "y",
            shape: Shape::One,
        };
        let errors = link("prod", &[stack("a", &[a], &[b]), stack("b", &[b], &[a])]).unwrap_err();
        assert_eq!(
            errors,
            ["stacks a, b import each other's values in a cycle, so no apply order exists"]
        );
    }
}
