//! The runtime of the generated bindings ([`crate::aws`]): typed values, block bodies,
//! the [`Block`] trait keel's `Config::add` takes, the [`Provider`] trait of the provider
//! configuration, and the provider-major gates.
//!
//! A binding is a builder over a JSON object: `new` takes the required attributes, one
//! method per optional attribute or nested block sets it, and [`Block::into_body`] hands
//! the object to the model. Nothing here writes `${`: references stay [`Expr`] /
//! [`Attr`] values until keel's `refs` renders them.

//! # What the bindings refuse to compile
//!
//! Each refusal below (a `compile_fail` doctest) sits beside its passing twin, which
//! differs only in the mistake, so the failure is the one intended (stable rustdoc does
//! not check the error codes given; they say which error is meant).
//!
//! The blocks the examples wire together (keel's `Config::add` returns the reference;
//! here it is made from the address):
//!
//! ```
//! use keel_tf_aws::aws::resource::{KmsAlias, KmsKey, KmsKeyRef};
//! use keel_tf_aws::expr::Ref;
//! let _ = KmsKey::new().enable_key_rotation(true);
//! let key = KmsKeyRef::from(Ref::resource("aws_kms_key", "main"));
//! let _ = KmsAlias::new(key.key_id()).name("alias/app");
//! ```
//!
//! A misspelled attribute (`enable_key_rotaton`):
//!
//! ```compile_fail,E0599
//! use keel_tf_aws::aws::resource::KmsKey;
//! let _ = KmsKey::new().enable_key_rotaton(true);
//! ```
//! ```
//! use keel_tf_aws::aws::resource::KmsKey;
//! let _ = KmsKey::new().enable_key_rotation(true);
//! ```
//!
//! A value of the wrong type (a string where the schema has a number), or a reference of
//! the wrong type (the key's `arn`, a string, where a number is wanted):
//!
//! ```compile_fail,E0277
//! use keel_tf_aws::aws::resource::KmsKey;
//! let _ = KmsKey::new().deletion_window_in_days("30");
//! ```
//! ```
//! use keel_tf_aws::aws::resource::KmsKey;
//! let _ = KmsKey::new().deletion_window_in_days(30);
//! ```
//! ```compile_fail,E0277
//! use keel_tf_aws::aws::resource::{KmsKey, KmsKeyRef};
//! fn wire(other: &KmsKeyRef) -> KmsKey {
//!     KmsKey::new().deletion_window_in_days(other.arn())
//! }
//! ```
//! ```
//! use keel_tf_aws::aws::resource::{KmsKey, KmsKeyRef};
//! fn wire(other: &KmsKeyRef) -> KmsKey {
//!     KmsKey::new().description(other.arn())
//! }
//! ```
//!
//! A required attribute left out (`aws_kms_alias` needs `target_key_id`):
//!
//! ```compile_fail,E0061
//! use keel_tf_aws::aws::resource::KmsAlias;
//! let _ = KmsAlias::new().name("alias/app");
//! ```
//! ```
//! use keel_tf_aws::aws::resource::KmsAlias;
//! let _ = KmsAlias::new("key-id").name("alias/app");
//! ```
//!
//! Two blocks where the schema allows one (`versioning_configuration` has max_items 1, so
//! it is a struct, not a list), while a repeatable block takes several:
//!
//! ```compile_fail,E0308
//! use keel_tf_aws::aws::resource::S3BucketVersioning;
//! use keel_tf_aws::aws::resource::s3_bucket_versioning::VersioningConfiguration;
//! let _ = S3BucketVersioning::new(
//!     "bucket",
//!     [VersioningConfiguration::new("Enabled"), VersioningConfiguration::new("Suspended")],
//! );
//! ```
//! ```
//! use keel_tf_aws::aws::resource::S3BucketVersioning;
//! use keel_tf_aws::aws::resource::s3_bucket_versioning::VersioningConfiguration;
//! let _ = S3BucketVersioning::new("bucket", VersioningConfiguration::new("Enabled"));
//! ```
//! ```
//! use keel_tf_aws::aws::resource::S3BucketLifecycleConfiguration;
//! use keel_tf_aws::aws::resource::s3_bucket_lifecycle_configuration::Rule;
//! let _ = S3BucketLifecycleConfiguration::new("bucket")
//!     .rule([Rule::new("a", "Enabled"), Rule::new("b", "Enabled")]);
//! ```
//!
//! An attribute only hashicorp/aws 6.x has (`region`), used without the gate:
//!
//! ```compile_fail,E0599
//! use keel_tf_aws::aws::resource::KmsAlias;
//! let _ = KmsAlias::new("key-id").region("eu-west-1");
//! ```
//! ```
//! use keel_tf_aws::aws::resource::KmsAlias;
//! use keel_tf_aws::bind::Only6;
//! let gate = Only6::because("this root pins hashicorp/aws 6.x");
//! let _ = KmsAlias::new("key-id").region_v6_only(gate, "eu-west-1");
//! ```
//!
//! A misspelled attribute of the provider configuration (`allowed_acount_ids`):
//!
//! ```compile_fail,E0599
//! use keel_tf_aws::aws::provider::Aws;
//! let _ = Aws::new().region("eu-west-1").allowed_acount_ids(["123456789012"]);
//! ```
//! ```
//! use keel_tf_aws::aws::provider::Aws;
//! let _ = Aws::new().region("eu-west-1").allowed_account_ids(["123456789012"]);
//! ```
//!
//! A literal of another type than the schema's only through [`Val::converted`], which
//! takes a bool or a number, never a JSON value:
//!
//! ```compile_fail,E0277
//! use keel_tf_aws::aws::resource::LbTargetGroup;
//! use keel_tf_aws::bind::Val;
//! let _ = LbTargetGroup::new().deregistration_delay(Val::converted(serde_json::json!([30])));
//! ```
//! ```
//! use keel_tf_aws::aws::resource::LbTargetGroup;
//! use keel_tf_aws::bind::Val;
//! let _ = LbTargetGroup::new().deregistration_delay(Val::converted(30));
//! ```
//!
//! A computed attribute assigned (`arn` is read-only: a getter of the reference, no
//! builder method):
//!
//! ```compile_fail,E0599
//! use keel_tf_aws::aws::resource::KmsKey;
//! let _ = KmsKey::new().arn("arn:aws:kms:eu-west-1:123456789012:key/x");
//! ```
//! ```
//! use keel_tf_aws::aws::resource::{KmsAlias, KmsKeyRef};
//! fn alias(key: &KmsKeyRef) -> KmsAlias {
//!     KmsAlias::new(key.arn())
//! }
//! ```

use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde_json::{Map, Value};

use crate::expr::{Attr, BlockKind, Expr, Ref};

/// The schema type of an attribute whose shape the bindings do not model (`object`,
/// `tuple`, `dynamic`, or a list of objects): any JSON value or expression is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Json {}

/// A value for an attribute of schema type `T` (`String`, `f64` for numbers, `bool`,
/// `Vec<T>` for lists and sets, `BTreeMap<String, T>` for maps, [`Json`]): a literal of
/// that type, an [`Attr<T>`], or an untyped [`Expr`] (a reference the bindings cannot
/// type yet, such as another construct's `arn()`). The one literal of another type it
/// takes is a [`Val::converted`] scalar.
pub struct Val<T> {
    json: Value,
    ty: PhantomData<fn() -> T>,
}

impl<T> Val<T> {
    fn new(json: Value) -> Self {
        Val {
            json,
            ty: PhantomData,
        }
    }

    /// The value as the model stores it.
    pub fn into_json(self) -> Value {
        self.json
    }
}

impl Val<String> {
    /// A bool or number literal for a string attribute, written as it is: Terraform
    /// converts it to the schema's string (`true` to `"true"`, `30` to `"30"`). The one
    /// way to give an attribute a literal of another type, for values keel wrote before
    /// the bindings existed and must keep writing byte for byte (a target group's
    /// `deregistration_delay`, ElastiCache's `at_rest_encryption_enabled`). It takes
    /// scalars only ([`ScalarLiteral`]): never a list, map or arbitrary JSON value.
    pub fn converted(literal: impl Into<ScalarLiteral>) -> Self {
        Val::new(literal.into().0)
    }
}

impl<T> Clone for Val<T> {
    fn clone(&self) -> Self {
        Val::new(self.json.clone())
    }
}

impl<T> std::fmt::Debug for Val<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Val").field(&self.json).finish()
    }
}

impl<T> PartialEq for Val<T> {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

/// A bool or number literal that Terraform converts to a string attribute's type: what
/// [`Val::converted`] takes.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarLiteral(Value);

/// `$ty` literals are [`ScalarLiteral`]s.
macro_rules! scalar {
    ($($ty:ty),*) => {$(
        impl From<$ty> for ScalarLiteral {
            fn from(v: $ty) -> Self {
                ScalarLiteral(Value::from(v))
            }
        }
    )*};
}

scalar!(bool, i32, i64, u8, u16, u32, u64, usize);

impl<T> From<Expr> for Val<T> {
    fn from(e: Expr) -> Self {
        Val::new(e.into())
    }
}

impl<T> From<&Expr> for Val<T> {
    fn from(e: &Expr) -> Self {
        Val::new(e.into())
    }
}

impl<T> From<Attr<T>> for Val<T> {
    fn from(a: Attr<T>) -> Self {
        Val::new(a.into())
    }
}

impl<T> From<&Attr<T>> for Val<T> {
    fn from(a: &Attr<T>) -> Self {
        Val::new(a.clone().into())
    }
}

/// Literal conversions: `$ty` values are `Val<$schema>`.
macro_rules! literal {
    ($schema:ty: $($ty:ty),*) => {$(
        impl From<$ty> for Val<$schema> {
            fn from(v: $ty) -> Self {
                Val::new(Value::from(v))
            }
        }
    )*};
}

literal!(String: String, &str);
literal!(f64: i32, i64, u8, u16, u32, u64, usize, f64);
literal!(bool: bool);
literal!(Json: Value);

impl From<&String> for Val<String> {
    fn from(v: &String) -> Self {
        Val::new(Value::String(v.clone()))
    }
}

impl<T, X: Into<Val<T>>> From<Vec<X>> for Val<Vec<T>> {
    fn from(items: Vec<X>) -> Self {
        Val::new(Value::Array(
            items.into_iter().map(|x| x.into().json).collect(),
        ))
    }
}

impl<T, X: Into<Val<T>>, const N: usize> From<[X; N]> for Val<Vec<T>> {
    fn from(items: [X; N]) -> Self {
        Vec::from(items).into()
    }
}

impl<T, K: Into<String>, X: Into<Val<T>>> From<BTreeMap<K, X>> for Val<BTreeMap<String, T>> {
    fn from(items: BTreeMap<K, X>) -> Self {
        Val::new(Value::Object(
            items
                .into_iter()
                .map(|(k, x)| (k.into(), x.into().json))
                .collect(),
        ))
    }
}

/// The JSON object a binding builds, with the single blocks it was given more than once
/// (see [`Body::set_twice`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Body {
    map: Map<String, Value>,
    set_twice: Vec<String>,
}

impl Body {
    /// Sets attribute `name`.
    pub fn set<T>(&mut self, name: &str, value: impl Into<Val<T>>) {
        self.map.insert(name.to_owned(), value.into().json);
    }

    /// Sets a block that occurs at most once (written as a one-element list, which
    /// Terraform JSON reads for every nesting mode). A second call for the same block
    /// replaces the first and is recorded (see [`Body::set_twice`]).
    pub fn set_block(&mut self, name: &str, block: Body) {
        let value = Value::Array(vec![Value::Object(self.adopt(name, block))]);
        self.insert_once(name, value);
    }

    /// Like [`Body::set_block`], written as the block's object alone (the other form
    /// Terraform JSON reads for a block): the provider block's form, which keel's roots
    /// have always had.
    pub fn set_block_object(&mut self, name: &str, block: Body) {
        let value = Value::Object(self.adopt(name, block));
        self.insert_once(name, value);
    }

    /// Appends blocks to a repeatable block.
    pub fn push_blocks(&mut self, name: &str, blocks: impl IntoIterator<Item = Body>) {
        let items: Vec<Value> = blocks
            .into_iter()
            .map(|b| Value::Object(self.adopt(name, b)))
            .collect();
        let entry = self
            .map
            .entry(name.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(existing) = entry {
            existing.extend(items);
        }
    }

    /// Sets the meta-argument `depends_on`: addresses (`aws_x.y`) applied before this block.
    pub fn depends_on(&mut self, addresses: impl IntoIterator<Item = String>) {
        let list = addresses.into_iter().map(Value::String).collect();
        self.map.insert("depends_on".into(), Value::Array(list));
    }

    /// Sets the meta-argument `lifecycle` (a single block: a second call is recorded like
    /// a single block set twice).
    pub fn lifecycle(&mut self, lifecycle: Lifecycle) {
        let value = Value::Object(self.adopt("lifecycle", lifecycle.0));
        self.insert_once("lifecycle", value);
    }

    /// The single blocks (and `lifecycle`) set more than once, as paths from this body
    /// (`versioning_configuration`, `rule.filter`), in the order of the second calls.
    /// Only the last block given is kept; keel's `Config::add` reports each path as an
    /// error, so a block given twice fails synth instead of vanishing.
    pub fn set_twice(&self) -> &[String] {
        &self.set_twice
    }

    /// The object (what [`Body::set_twice`] lists is not part of it).
    pub fn into_json(self) -> Value {
        Value::Object(self.map)
    }

    /// The nested `block`'s object, its set-twice paths taken over under `name`.
    fn adopt(&mut self, name: &str, block: Body) -> Map<String, Value> {
        self.set_twice
            .extend(block.set_twice.into_iter().map(|p| format!("{name}.{p}")));
        block.map
    }

    fn insert_once(&mut self, name: &str, value: Value) {
        if self.map.insert(name.to_owned(), value).is_some() {
            self.set_twice.push(name.to_owned());
        }
    }
}

/// Terraform's `lifecycle` meta-argument (not in the provider schema, the same for every
/// resource type).
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use]
pub struct Lifecycle(Body);

impl Lifecycle {
    /// No setting yet.
    pub fn new() -> Self {
        Lifecycle::default()
    }

    /// `create_before_destroy`: the replacement exists before the old object is destroyed.
    pub fn create_before_destroy(mut self, value: bool) -> Self {
        self.0.set::<bool>("create_before_destroy", value);
        self
    }

    /// `prevent_destroy`: a plan that would destroy the object fails.
    pub fn prevent_destroy(mut self, value: bool) -> Self {
        self.0.set::<bool>("prevent_destroy", value);
        self
    }

    /// `ignore_changes`: attribute paths (`scaling_config[0].desired_size`) Terraform leaves
    /// alone after creation.
    pub fn ignore_changes(mut self, paths: impl IntoIterator<Item = String>) -> Self {
        let list = paths.into_iter().map(Value::String).collect();
        self.0
            .map
            .insert("ignore_changes".into(), Value::Array(list));
        self
    }

    /// `precondition` blocks: checked before the object is created or changed; the apply
    /// stops with the first failing one's message (an empty list sets nothing).
    pub fn precondition(mut self, conditions: impl IntoIterator<Item = Precondition>) -> Self {
        let blocks: Vec<Body> = conditions.into_iter().map(|c| c.0).collect();
        if !blocks.is_empty() {
            self.0.push_blocks("precondition", blocks);
        }
        self
    }
}

/// One `lifecycle.precondition` block (see [`Lifecycle::precondition`]).
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Precondition(Body);

impl Precondition {
    /// The check (a boolean expression) and the message shown when it is false.
    pub fn new(condition: impl Into<Val<bool>>, error_message: impl Into<Val<String>>) -> Self {
        let mut body = Body::default();
        body.set("condition", condition);
        body.set("error_message", error_message);
        Precondition(body)
    }
}

/// A nested block of a binding (generated), turned into its body by its parent.
pub trait Nested {
    /// The block's body.
    fn into_body(self) -> Body;
}

/// A resource or data source binding (generated), added with keel's `Config::add`.
pub trait Block {
    /// Resource or data source.
    const KIND: BlockKind;
    /// The Terraform type, e.g. `aws_kms_key`.
    const TYPE: &'static str;
    /// The typed reference `add` returns (its getters are the block's attributes).
    type Handle: From<Ref>;
    /// The block's body (keel's `Config::add` reports its [`Body::set_twice`] paths).
    fn into_body(self) -> Body;
}

/// A provider configuration binding (generated: [`crate::aws::provider::Aws`]), rendered by
/// keel's `Config` into `main.tf.json`.
pub trait Provider {
    /// The provider's local name, the key under `provider` (`aws`).
    const NAME: &'static str;
    /// The provider block's body.
    fn into_body(self) -> Body;
}

/// Permission to set an attribute or block that only hashicorp/aws 6.x has (the bindings'
/// `*_v6_only` methods). A root that uses one is no longer valid for 5.x, so every use
/// states why it is acceptable; keel's own constructs use none.
#[derive(Debug, Clone, Copy)]
pub struct Only6 {
    _reason: &'static str,
}

impl Only6 {
    /// Opts in, with the reason (shown to reviewers in code, not rendered).
    pub fn because(reason: &'static str) -> Self {
        Only6 { _reason: reason }
    }
}

/// Permission to set an attribute or block that only hashicorp/aws 5.x has (the bindings'
/// `*_v5_only` methods); see [`Only6`].
#[derive(Debug, Clone, Copy)]
pub struct Only5 {
    _reason: &'static str,
}

impl Only5 {
    /// Opts in, with the reason (shown to reviewers in code, not rendered).
    pub fn because(reason: &'static str) -> Self {
        Only5 { _reason: reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_json_shape() {
        let mut b = Body::default();
        b.set::<f64>("days", 30u32);
        b.set::<String>("name", "x");
        b.set::<Vec<String>>("list", ["a", "b"]);
        let vpc = Ref::resource("aws_vpc", "main").id();
        b.set::<String>("ref", &vpc);
        b.push_blocks("rule", [Body::default(), Body::default()]);
        b.set_block("one", Body::default());
        let want = serde_json::json!({
            "days": 30,
            "name": "x",
            "list": ["a", "b"],
            "ref": vpc.to_string(),
            "rule": [{}, {}],
            "one": [{}],
        });
        assert_eq!(b.into_json(), want);
    }

    #[test]
    fn a_single_block_set_twice_is_recorded_with_its_path() {
        let mut inner = Body::default();
        inner.set_block("filter", Body::default());
        inner.set_block("filter", Body::default());
        let mut b = Body::default();
        b.set_block("one", Body::default());
        b.push_blocks("rule", [Body::default(), inner]);
        assert_eq!(b.set_twice(), ["rule.filter"]);
        b.set_block_object("one", Body::default());
        b.lifecycle(Lifecycle::new());
        b.lifecycle(Lifecycle::new().prevent_destroy(true));
        assert_eq!(b.set_twice(), ["rule.filter", "one", "lifecycle"]);
        // The last one given is kept; repeatable blocks append and are never recorded.
        let json = b.into_json();
        assert_eq!(json["one"], serde_json::json!({}));
        assert_eq!(
            json["lifecycle"],
            serde_json::json!({"prevent_destroy": true})
        );
        let mut once = Body::default();
        once.set_block("one", Body::default());
        once.push_blocks("rule", [Body::default()]);
        once.push_blocks("rule", [Body::default()]);
        assert!(once.set_twice().is_empty());
    }

    #[test]
    fn converted_literals_keep_their_json_type() {
        let mut b = Body::default();
        b.set("delay", Val::converted(30));
        b.set("flag", Val::converted(true));
        assert_eq!(
            b.into_json(),
            serde_json::json!({"delay": 30, "flag": true})
        );
    }
}
