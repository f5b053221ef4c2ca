//! The Terraform JSON model: one root module per environment and stack.
//!
//! Constructs add resources, data sources and outputs to a [`Config`], each in a named
//! file (`network`, `database`, ...), and [`Config::render`] produces the `*.tf.json` files:
//! sorted keys, pretty-printed, trailing newline, expressions finalized by `refs`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::refs::{self, Expr, Ref};

pub use keel_tf_aws::{aws, bind};
pub mod hcl;

/// The Terraform versions every generated root accepts.
pub const REQUIRED_TERRAFORM: &str = ">= 1.10.0, < 2.0.0";
/// The hashicorp/aws versions every generated root accepts: valid for both majors.
pub const REQUIRED_AWS_PROVIDER: &str = ">= 5.100.0, < 7.0.0";

/// Where Terraform keeps the state of one root module (S3, native locking).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Backend {
    /// State bucket.
    pub bucket: String,
    /// Object key of this root's state.
    pub key: String,
    /// Region of the bucket.
    pub region: String,
    /// Server-side encryption of the state object.
    pub encrypt: bool,
    /// S3-native state locking (Terraform >= 1.10).
    pub use_lockfile: bool,
}

/// The default `aws` provider of a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsProvider {
    /// Region every resource lives in.
    pub region: String,
    /// The only account a plan may run against.
    pub account_id: String,
    /// Tags put on every taggable resource.
    pub default_tags: BTreeMap<String, String>,
}

/// A checkov suppression written in stack or construct code, with the reason shown in the
/// output (as a `//` comment in the resource body, which checkov reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    /// checkov check id, e.g. `CKV_AWS_91`.
    pub check: &'static str,
    /// Why the check does not apply here.
    pub reason: &'static str,
}

/// A construct misuse found while building the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TfError {
    /// Two blocks with the same address.
    #[error("terraform address {0} is defined twice; construct ids must be unique")]
    DuplicateAddress(String),
    /// Two outputs with the same name.
    #[error("terraform output {0} is defined twice")]
    DuplicateOutput(String),
    /// A `moved` block whose `to` address is not a resource of the root.
    #[error(
        "moved block {from} -> {to}: {to} is not a resource of this root; a rename must point at the construct's new address"
    )]
    MovedToMissing {
        /// The old address.
        from: String,
        /// The new address, which does not exist.
        to: String,
    },
    /// A `moved` block whose `from` address is still a resource of the root.
    #[error(
        "moved block {from} -> {to}: {from} is still a resource of this root; Terraform refuses to move an object that still exists"
    )]
    MovedFromExists {
        /// The old address, which still exists.
        from: String,
        /// The new address.
        to: String,
    },
    /// Two `moved` blocks from the same address.
    #[error("{0} is moved twice; one old address can move to one new address only")]
    MovedTwice(String),
    /// A block the schema allows once was given twice to a binding's builder (the second
    /// would silently replace the first).
    #[error(
        "{address}: block {block} is set twice, and the schema allows one; the second call would replace the first"
    )]
    BlockSetTwice {
        /// The resource, data source or provider (`aws_s3_bucket.logs`, `provider.aws`).
        address: String,
        /// The block's path in the body (`versioning_configuration`, `rule.filter`).
        block: String,
    },
}

/// A renamed resource: Terraform moves the state of `from` to `to` instead of destroying
/// `from` and creating `to` (a `moved` block in `moved.tf.json`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Moved {
    /// The old address (same resource type as `to`).
    pub from: Ref,
    /// The new address, a resource of the same root.
    pub to: Ref,
}

#[derive(Debug, Clone)]
struct Block {
    file: String,
    body: Value,
}

/// One Terraform root module under construction.
#[derive(Debug, Clone)]
pub struct Config {
    comment: String,
    backend: S3Backend,
    provider: AwsProvider,
    blocks: BTreeMap<Ref, Block>,
    locals: BTreeMap<String, Block>,
    allowances: BTreeMap<(String, &'static str), &'static str>,
    outputs: BTreeMap<String, Value>,
    exports: Vec<crate::exports::Link>,
    imports: Vec<crate::exports::Link>,
    moved: Vec<Moved>,
    errors: Vec<TfError>,
}

impl Config {
    /// An empty root with its header comment, backend and provider.
    pub fn new(comment: impl Into<String>, backend: S3Backend, provider: AwsProvider) -> Self {
        Config {
            comment: comment.into(),
            backend,
            provider,
            blocks: BTreeMap::new(),
            locals: BTreeMap::new(),
            allowances: BTreeMap::new(),
            outputs: BTreeMap::new(),
            exports: Vec::new(),
            imports: Vec::new(),
            moved: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Records a value this root exports (see [`crate::exports`]).
    pub fn record_export(&mut self, link: crate::exports::Link) {
        self.exports.push(link);
    }

    /// Records a value this root imports.
    pub fn record_import(&mut self, link: crate::exports::Link) {
        self.imports.push(link);
    }

    /// What this root exports.
    pub fn exports(&self) -> &[crate::exports::Link] {
        &self.exports
    }

    /// What this root imports.
    pub fn imports(&self) -> &[crate::exports::Link] {
        &self.imports
    }

    /// The provider's region.
    pub fn region(&self) -> &str {
        &self.provider.region
    }

    /// The account this root is pinned to.
    pub fn account_id(&self) -> &str {
        &self.provider.account_id
    }

    /// Adds `resource.<ty>.<name>` with an untyped body to `file` (without `.tf.json`) and
    /// returns its reference. Tests only (policy rules are tested on bodies no construct
    /// builds): keel's code builds every block through the typed bindings ([`Config::add`]).
    #[cfg(test)]
    pub fn resource(&mut self, file: &str, ty: &str, name: &str, body: Value) -> Ref {
        self.insert(file, Ref::resource(ty, name), body)
    }

    /// Adds a typed block (a binding from [`aws`]) as `<type>.<name>` to `file` (without
    /// `.tf.json`) and returns its typed reference.
    pub fn add<B: bind::Block>(&mut self, file: &str, name: &str, block: B) -> B::Handle {
        self.add_with(file, name, block, &[])
    }

    /// Like [`Config::add`], with checkov suppressions recorded in the body's `//` key.
    pub fn add_with<B: bind::Block>(
        &mut self,
        file: &str,
        name: &str,
        block: B,
        suppressions: &[Suppression],
    ) -> B::Handle {
        let r = match B::KIND {
            refs::BlockKind::Resource => Ref::resource(B::TYPE, name),
            refs::BlockKind::Data => Ref::data(B::TYPE, name),
        };
        let body = self.checked(r.address(), block.into_body());
        let body = with_suppressions(body, suppressions);
        self.insert(file, r, body).into()
    }

    /// Like [`Config::resource`], with checkov suppressions recorded in the body's `//` key.
    #[cfg(test)]
    pub fn resource_with(
        &mut self,
        file: &str,
        ty: &str,
        name: &str,
        body: Value,
        suppressions: &[Suppression],
    ) -> Ref {
        let body = with_suppressions(body, suppressions);
        self.resource(file, ty, name, body)
    }

    /// Like [`Config::data`], with checkov suppressions recorded in the body's `//` key.
    #[cfg(test)]
    pub fn data_with(
        &mut self,
        file: &str,
        ty: &str,
        name: &str,
        body: Value,
        suppressions: &[Suppression],
    ) -> Ref {
        let body = with_suppressions(body, suppressions);
        self.data(file, ty, name, body)
    }

    /// Adds a copy of block `from` (already built through the bindings) as `<type>.<name>`
    /// in `file`, and returns its reference, or `None` when `from` is not in this root.
    /// Benchmarks use it to grow a real root to a given size.
    pub fn copy_block(&mut self, file: &str, from: &Ref, name: &str) -> Option<Ref> {
        let body = self.blocks.get(from)?.body.clone();
        let r = match from.kind() {
            refs::BlockKind::Resource => Ref::resource(from.ty(), name),
            refs::BlockKind::Data => Ref::data(from.ty(), name),
        };
        Some(self.insert(file, r, body))
    }

    /// Records checkov suppressions on a block already added (appended to its `//`
    /// comment, in the form [`Config::add_with`] writes).
    pub fn suppress(&mut self, r: &Ref, suppressions: &[Suppression]) {
        let Some(map) = self.blocks.get_mut(r).and_then(|b| b.body.as_object_mut()) else {
            return;
        };
        let mut parts: Vec<String> = map
            .get("//")
            .and_then(Value::as_str)
            .map(|old| vec![old.to_owned()])
            .unwrap_or_default();
        parts.extend(
            suppressions
                .iter()
                .map(|s| format!("checkov:skip={}:{}", s.check, s.reason)),
        );
        if !parts.is_empty() {
            map.insert("//".into(), Value::String(parts.join("; ")));
        }
    }

    /// Records that resource `to` was called `from_name` before (a renamed construct id):
    /// synth writes `moved { from = <ty>.<from_name>, to = <ty>.<to name> }`, so Terraform
    /// moves the object instead of destroying and recreating it. Rendering fails when `to`
    /// is not a resource of this root or `from` still is one.
    pub fn moved(&mut self, to: &Ref, from_name: &str) {
        let from = Ref::resource(to.ty(), from_name);
        if self.moved.iter().any(|m| m.from == from) {
            self.errors.push(TfError::MovedTwice(from.address()));
            return;
        }
        self.moved.push(Moved {
            from,
            to: to.clone(),
        });
    }

    /// The renames recorded with [`Config::moved`], sorted by old address.
    pub fn moves(&self) -> Vec<&Moved> {
        let mut moves: Vec<&Moved> = self.moved.iter().collect();
        moves.sort();
        moves
    }

    /// Adds `data.<ty>.<name>` with an untyped body to `file` and returns its reference.
    /// Tests only, like [`Config::resource`].
    #[cfg(test)]
    pub fn data(&mut self, file: &str, ty: &str, name: &str, body: Value) -> Ref {
        self.insert(file, Ref::data(ty, name), body)
    }

    /// Adds `locals { <name> = <value> }` to `file` and returns `local.<name>`. A JSON
    /// object or array here is an object or tuple expression, so it renders as readable
    /// structured data.
    pub fn local(&mut self, file: &str, name: &str, value: Value) -> Expr {
        if self.locals.contains_key(name) {
            self.errors
                .push(TfError::DuplicateAddress(format!("local.{name}")));
        } else {
            self.locals.insert(
                name.to_owned(),
                Block {
                    file: file.to_owned(),
                    body: value,
                },
            );
        }
        Expr::raw(format!("local.{name}"))
    }

    /// Allows a keel policy finding of `rule` on block `r`, with the reason; the reason is
    /// written into the block's `//` comment as `keel:allow=<rule>:<reason>`.
    pub fn allow(&mut self, r: &Ref, rule: &'static str, reason: &'static str) {
        self.allowances.insert((r.address(), rule), reason);
    }

    /// Whether `rule` is allowed on the block at `address`.
    pub fn is_allowed(&self, address: &str, rule: &str) -> bool {
        self.allowances_of(address).any(|(r, _)| r == rule)
    }

    /// Adds an output with a description (rendered into `outputs.tf.json`). Its value is
    /// an expression or a scalar known at synth ([`OutputValue`]), never a JSON body.
    pub fn output(
        &mut self,
        name: &str,
        description: &str,
        value: impl Into<OutputValue>,
        sensitive: bool,
    ) {
        if self.outputs.contains_key(name) {
            self.errors.push(TfError::DuplicateOutput(name.to_owned()));
            return;
        }
        let value = match value.into() {
            OutputValue::Expr(e) => Value::from(e),
            OutputValue::Literal(v) => v,
        };
        let mut body = json!({ "description": description, "value": value });
        if sensitive {
            body["sensitive"] = Value::Bool(true);
        }
        self.outputs.insert(name.to_owned(), body);
    }

    /// The body's JSON, after recording a [`TfError::BlockSetTwice`] for each single block
    /// its builder was given twice.
    fn checked(&mut self, address: String, body: bind::Body) -> Value {
        self.errors.extend(set_twice_errors(&address, &body));
        body.into_json()
    }

    fn insert(&mut self, file: &str, r: Ref, body: Value) -> Ref {
        if self.blocks.contains_key(&r) {
            self.errors.push(TfError::DuplicateAddress(r.address()));
        } else {
            self.blocks.insert(
                r.clone(),
                Block {
                    file: file.to_owned(),
                    body,
                },
            );
        }
        r
    }

    /// Every resource (not data source) address, sorted.
    pub fn resource_addresses(&self) -> Vec<String> {
        self.blocks
            .keys()
            .filter(|r| r.kind() == refs::BlockKind::Resource)
            .map(Ref::address)
            .collect()
    }

    /// The body of the block at `address` (`aws_vpc.main`, `data.aws_region.current`): a map
    /// lookup, for rules that follow references from block to block.
    pub fn body_at(&self, address: &str) -> Option<&Value> {
        let (data, rest) = match address.strip_prefix("data.") {
            Some(rest) => (true, rest),
            None => (false, address),
        };
        let (ty, name) = rest.split_once('.')?;
        let r = if data {
            Ref::data(ty, name)
        } else {
            Ref::resource(ty, name)
        };
        self.blocks.get(&r).map(|b| &b.body)
    }

    /// The body of a block, for tests and policy checks.
    pub fn body(&self, r: &Ref) -> Option<&Value> {
        self.blocks.get(r).map(|b| &b.body)
    }

    /// All blocks as (reference, body), sorted by address.
    pub fn blocks(&self) -> impl Iterator<Item = (&Ref, &Value)> {
        self.blocks.iter().map(|(r, b)| (r, &b.body))
    }

    /// Count of managed resources.
    pub fn resource_count(&self) -> usize {
        self.blocks
            .keys()
            .filter(|r| r.kind() == refs::BlockKind::Resource)
            .count()
    }

    /// Renders the root into `file name -> bytes`: `versions.tf.json` (the `terraform`
    /// block: versions and backend), `main.tf.json` (the provider), one file per construct
    /// group, and `outputs.tf.json`.
    pub fn render(&self) -> Result<BTreeMap<String, String>, Vec<TfError>> {
        let (mut provider, provider_errors) = self.provider_block();
        let errors: Vec<TfError> = self
            .errors
            .iter()
            .cloned()
            .chain(self.moved_errors())
            .chain(provider_errors)
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut files: BTreeMap<&str, Tree<'_>> = BTreeMap::new();
        // The header comment sits in block bodies: a root-level `//` is valid Terraform
        // JSON, but checkov's terraform_json parser rejects such a file. The `terraform`
        // block gets a file of its own (`versions.tf.json`), which scanners can skip: their
        // JSON parsers choke on its literal settings, and no check applies to it.
        let mut terraform = self.terraform_block();
        terraform["//"] = Value::String(self.comment.clone());
        files
            .entry("versions")
            .or_default()
            .insert("terraform", Node::Owned(terraform));
        provider[<aws::provider::Aws as bind::Provider>::NAME]["//"] =
            Value::String(self.comment.clone());
        files
            .entry("main")
            .or_default()
            .insert("provider", Node::Owned(provider));
        // Bodies are written where they are: only a body with allowances is copied.
        for (r, block) in &self.blocks {
            let section = match r.kind() {
                refs::BlockKind::Resource => "resource",
                refs::BlockKind::Data => "data",
            };
            let body = match self.with_allowances(r, &block.body) {
                Some(changed) => Node::Owned(changed),
                None => Node::Borrowed(&block.body),
            };
            let by_type = files
                .entry(block.file.as_str())
                .or_default()
                .entry(section)
                .or_insert_with(|| Node::Tree(Tree::new()))
                .tree()
                .and_then(|by_type| {
                    by_type
                        .entry(r.ty())
                        .or_insert_with(|| Node::Tree(Tree::new()))
                        .tree()
                });
            if let Some(by_name) = by_type {
                by_name.insert(r.name(), body);
            }
        }
        for (name, local) in &self.locals {
            let locals = files
                .entry(local.file.as_str())
                .or_default()
                .entry("locals")
                .or_insert_with(|| Node::Tree(Tree::new()))
                .tree();
            if let Some(locals) = locals {
                locals.insert(name, Node::Borrowed(&local.body));
            }
        }
        if !self.outputs.is_empty() {
            let outputs: Tree<'_> = self
                .outputs
                .iter()
                .map(|(k, v)| (k.as_str(), Node::Borrowed(v)))
                .collect();
            files
                .entry("outputs")
                .or_default()
                .insert("output", Node::Tree(outputs));
        }
        if !self.moved.is_empty() {
            let moved: Vec<Value> = self
                .moves()
                .into_iter()
                .map(|m| json!({"from": m.from.address(), "to": m.to.address()}))
                .collect();
            files
                .entry("moved")
                .or_default()
                .insert("moved", Node::Owned(Value::Array(moved)));
        }
        Ok(files
            .into_iter()
            .map(|(name, body)| (format!("{name}.tf.json"), pretty(&Node::Tree(body))))
            .collect())
    }

    /// Moves whose `to` is missing or whose `from` still exists.
    fn moved_errors(&self) -> Vec<TfError> {
        let mut errors = Vec::new();
        for m in self.moves() {
            let (from, to) = (m.from.address(), m.to.address());
            if m.to.kind() != refs::BlockKind::Resource || !self.blocks.contains_key(&m.to) {
                errors.push(TfError::MovedToMissing { from, to });
            } else if self.blocks.contains_key(&m.from) {
                errors.push(TfError::MovedFromExists { from, to });
            }
        }
        errors
    }

    /// The (rule, reason) allowances of one address, by rule: a range of the sorted map, so
    /// looking them up for every block costs no more as allowances grow.
    fn allowances_of<'a>(
        &'a self,
        address: &'a str,
    ) -> impl Iterator<Item = (&'static str, &'static str)> + 'a {
        self.allowances
            .range((address.to_owned(), "")..)
            .take_while(move |((a, _), _)| a == address)
            .map(|((_, rule), reason)| (*rule, *reason))
    }

    /// The body with this block's policy allowances appended to its `//` comment, or `None`
    /// when it has none (the body renders as it is).
    fn with_allowances(&self, r: &Ref, body: &Value) -> Option<Value> {
        if self.allowances.is_empty() {
            return None;
        }
        let address = r.address();
        let notes: Vec<String> = self
            .allowances_of(&address)
            .map(|(rule, reason)| format!("keel:allow={rule}:{reason}"))
            .collect();
        if notes.is_empty() || !body.is_object() {
            return None;
        }
        let mut body = body.clone();
        if let Some(map) = body.as_object_mut() {
            let mut comment: Vec<String> = map
                .get("//")
                .and_then(Value::as_str)
                .map(|c| vec![c.to_owned()])
                .unwrap_or_default();
            comment.extend(notes);
            map.insert("//".into(), Value::String(comment.join("; ")));
        }
        Some(body)
    }

    fn terraform_block(&self) -> Value {
        let b = &self.backend;
        json!({
            "required_version": REQUIRED_TERRAFORM,
            "required_providers": {
                "aws": { "source": "hashicorp/aws", "version": REQUIRED_AWS_PROVIDER }
            },
            "backend": {
                "s3": {
                    "bucket": b.bucket,
                    "key": b.key,
                    "region": b.region,
                    "encrypt": b.encrypt,
                    "use_lockfile": b.use_lockfile,
                }
            }
        })
    }

    /// The `provider` section: the default `aws` configuration, built through the typed
    /// binding ([`aws::provider::Aws`]), with the errors of its body.
    fn provider_block(&self) -> (Value, Vec<TfError>) {
        let p = &self.provider;
        let aws = aws::provider::Aws::new()
            .region(&p.region)
            .allowed_account_ids([&p.account_id])
            .default_tags(aws::provider::DefaultTags::new().tags(p.default_tags.clone()));
        provider_section(aws)
    }
}

/// `{"<name>": <body>}` of a provider configuration, with a [`TfError::BlockSetTwice`] for
/// each single block its builder was given twice.
fn provider_section<P: bind::Provider>(provider: P) -> (Value, Vec<TfError>) {
    let body = provider.into_body();
    let errors = set_twice_errors(&format!("provider.{}", P::NAME), &body);
    let mut section = serde_json::Map::new();
    section.insert(P::NAME.to_owned(), body.into_json());
    (Value::Object(section), errors)
}

/// One [`TfError::BlockSetTwice`] per single block `body`'s builder was given twice.
fn set_twice_errors(address: &str, body: &bind::Body) -> Vec<TfError> {
    body.set_twice()
        .iter()
        .map(|block| TfError::BlockSetTwice {
            address: address.to_owned(),
            block: block.clone(),
        })
        .collect()
}

/// Records suppressions in a block body's `//` comment key (ignored by Terraform), as
/// `checkov:skip=<check>:<reason>` entries separated by `; `.
fn with_suppressions(mut body: Value, suppressions: &[Suppression]) -> Value {
    if !suppressions.is_empty()
        && let Some(map) = body.as_object_mut()
    {
        let comment: Vec<String> = suppressions
            .iter()
            .map(|s| format!("checkov:skip={}:{}", s.check, s.reason))
            .collect();
        map.insert("//".into(), Value::String(comment.join("; ")));
    }
    body
}

/// Pretty-prints `value` with sorted keys, finalized expressions and a trailing newline.
pub fn to_pretty_json(value: Value) -> String {
    pretty(&refs::Finalized(&value))
}

/// The objects of one rendered file, by key, down to the block bodies they hold.
type Tree<'a> = BTreeMap<&'a str, Node<'a>>;

/// A value in a rendered file: a body of the model (written in place), one built for the
/// file, or an object of further nodes.
enum Node<'a> {
    Borrowed(&'a Value),
    Owned(Value),
    Tree(Tree<'a>),
}

impl<'a> Node<'a> {
    /// The object this node is (`render` creates every node it descends into as one).
    fn tree(&mut self) -> Option<&mut Tree<'a>> {
        match self {
            Node::Tree(tree) => Some(tree),
            Node::Borrowed(_) | Node::Owned(_) => None,
        }
    }
}

impl serde::Serialize for Node<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Node::Borrowed(value) => refs::Finalized(value).serialize(s),
            Node::Owned(value) => refs::Finalized(value).serialize(s),
            Node::Tree(tree) => {
                // Keys are construct ids and resource types, but finalize them like any
                // key, so a file reads the same as `to_pretty_json` of its value.
                let mut entries: Vec<(std::borrow::Cow<'_, str>, &Node<'_>)> =
                    tree.iter().map(|(k, v)| (refs::finalized(k), v)).collect();
                if !entries.is_sorted_by(|a, b| a.0 <= b.0) {
                    entries.sort_by(|a, b| a.0.cmp(&b.0));
                }
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in &entries {
                    map.serialize_entry(k.as_ref(), v)?;
                }
                map.end()
            }
        }
    }
}

/// Pretty JSON of `value` (two-space indent) with a trailing newline.
fn pretty(value: &impl serde::Serialize) -> String {
    let mut out = Vec::with_capacity(4096);
    // Writing to a Vec cannot fail, and a `Value` always serializes: its keys are strings
    // and its numbers finite.
    let _ = serde_json::to_writer_pretty(&mut out, value);
    out.push(b'\n');
    // serde_json writes UTF-8 only.
    String::from_utf8(out).unwrap_or_default()
}

/// The value of a root's output: an expression (a typed attribute, a reference) or a
/// string, number or bool known at synth. A JSON object or list is not an output value:
/// [`Config::output`] takes only this.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputValue {
    /// A Terraform expression.
    Expr(Expr),
    /// A scalar literal.
    Literal(Value),
}

impl From<Expr> for OutputValue {
    fn from(e: Expr) -> Self {
        OutputValue::Expr(e)
    }
}

impl<T> From<refs::Attr<T>> for OutputValue {
    fn from(a: refs::Attr<T>) -> Self {
        OutputValue::Expr(a.into())
    }
}

macro_rules! output_literal {
    ($($ty:ty),*) => {$(
        impl From<$ty> for OutputValue {
            fn from(v: $ty) -> Self {
                OutputValue::Literal(Value::from(v))
            }
        }
    )*};
}

output_literal!(&str, String, bool, u16, u32, u64, i64);

impl From<&String> for OutputValue {
    fn from(v: &String) -> Self {
        OutputValue::Literal(Value::from(v.as_str()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An empty root for tests.
    pub(crate) fn config() -> Config {
        Config::new(
            "test",
            S3Backend {
                bucket: "b".into(),
                key: "k".into(),
                region: "eu-west-1".into(),
                encrypt: true,
                use_lockfile: true,
            },
            AwsProvider {
                region: "eu-west-1".into(),
                account_id: "012345678901".into(),
                default_tags: BTreeMap::new(),
            },
        )
    }

    #[test]
    fn duplicate_address_is_an_error() {
        let mut c = config();
        c.resource("a", "aws_vpc", "main", json!({}));
        c.resource("b", "aws_vpc", "main", json!({}));
        let err = c.render().unwrap_err();
        assert_eq!(err, vec![TfError::DuplicateAddress("aws_vpc.main".into())]);
    }

    #[test]
    fn render_is_sorted_and_references_resolve() {
        let mut c = config();
        let vpc = c.resource(
            "network",
            "aws_vpc",
            "main",
            json!({"cidr_block": "10.0.0.0/16"}),
        );
        c.resource(
            "network",
            "aws_subnet",
            "a",
            json!({"vpc_id": vpc.id(), "cidr_block": "10.0.0.0/20"}),
        );
        let files = c.render().unwrap();
        let network = &files["network.tf.json"];
        assert!(
            network.contains("\"vpc_id\": \"${aws_vpc.main.id}\""),
            "{network}"
        );
        assert!(network.find("aws_subnet").unwrap() < network.find("aws_vpc").unwrap());
        assert!(network.ends_with("}\n"));
        let main = &files["main.tf.json"];
        assert!(
            main.contains("\"allowed_account_ids\": [\n        \"012345678901\""),
            "{main}"
        );
        assert!(files["versions.tf.json"].contains("\">= 5.100.0, < 7.0.0\""));
        assert_eq!(
            c.render().unwrap(),
            files,
            "rendering twice gives the same bytes"
        );
    }

    #[test]
    fn a_rename_is_a_moved_block_in_moved_tf_json() {
        let mut c = config();
        let key = c.resource("kms", "aws_kms_key", "secrets", json!({}));
        c.moved(&key, "main");
        let files = c.render().unwrap();
        let moved: Value = serde_json::from_str(&files["moved.tf.json"]).unwrap();
        assert_eq!(
            moved,
            json!({"moved": [{"from": "aws_kms_key.main", "to": "aws_kms_key.secrets"}]})
        );
    }

    #[test]
    fn a_move_to_a_missing_or_from_an_existing_address_is_an_error() {
        let mut c = config();
        let key = c.resource("kms", "aws_kms_key", "main", json!({}));
        c.resource("kms", "aws_kms_key", "old", json!({}));
        c.moved(&key, "old");
        c.moved(&Ref::resource("aws_kms_key", "gone"), "older");
        c.moved(&Ref::resource("aws_kms_key", "other"), "old");
        let err = c.render().unwrap_err();
        assert_eq!(
            err,
            vec![
                TfError::MovedTwice("aws_kms_key.old".into()),
                TfError::MovedFromExists {
                    from: "aws_kms_key.old".into(),
                    to: "aws_kms_key.main".into()
                },
                TfError::MovedToMissing {
                    from: "aws_kms_key.older".into(),
                    to: "aws_kms_key.gone".into()
                },
            ]
        );
        assert!(
            err[2]
                .to_string()
                .contains("aws_kms_key.gone is not a resource of this root"),
            "{}",
            err[2]
        );
    }

    #[test]
    fn a_single_block_set_twice_fails_render_with_its_address() {
        use aws::resource::lb_target_group::{HealthCheck, Stickiness};
        let mut c = config();
        let group = aws::resource::LbTargetGroup::new()
            .health_check(HealthCheck::new().path("/a"))
            .stickiness(Stickiness::new("lb_cookie"))
            .health_check(HealthCheck::new().path("/b"));
        c.add("alb", "blue", group);
        c.add(
            "alb",
            "green",
            aws::resource::LbTargetGroup::new().health_check(HealthCheck::new()),
        );
        let err = c.render().unwrap_err();
        assert_eq!(
            err,
            vec![TfError::BlockSetTwice {
                address: "aws_lb_target_group.blue".into(),
                block: "health_check".into(),
            }]
        );
        assert!(
            err[0]
                .to_string()
                .contains("aws_lb_target_group.blue: block health_check is set twice"),
            "{}",
            err[0]
        );
    }

    #[test]
    fn a_provider_block_set_twice_is_an_error_and_the_default_provider_renders_as_before() {
        let tags = aws::provider::DefaultTags::new;
        let twice = aws::provider::Aws::new()
            .default_tags(tags())
            .default_tags(tags());
        let (_, errors) = provider_section(twice);
        assert_eq!(
            errors,
            vec![TfError::BlockSetTwice {
                address: "provider.aws".into(),
                block: "default_tags".into(),
            }]
        );
        let mut c = config();
        c.provider.default_tags = BTreeMap::from([("team".to_owned(), "core".to_owned())]);
        let (provider, errors) = c.provider_block();
        assert!(errors.is_empty());
        // The form keel wrote before the provider bindings: default_tags as an object.
        assert_eq!(
            provider,
            json!({"aws": {
                "region": "eu-west-1",
                "allowed_account_ids": ["012345678901"],
                "default_tags": {"tags": {"team": "core"}},
            }})
        );
    }

    #[test]
    fn suppressions_become_checkov_comments() {
        let mut c = config();
        let s = [Suppression {
            check: "CKV_AWS_1",
            reason: "because",
        }];
        let r = c.resource_with("x", "aws_thing", "t", json!({"a": 1}), &s);
        assert_eq!(c.body(&r).unwrap()["//"], "checkov:skip=CKV_AWS_1:because");
    }
}
