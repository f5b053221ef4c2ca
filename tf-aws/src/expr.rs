//! Terraform expressions as the model carries them: [`Expr`] (raw HCL text), the typed
//! [`Attr`] the bindings' getters return, and block addresses ([`Ref`]).
//!
//! An expression embedded in a model string sits between the two private-use characters
//! [`OPEN`] and [`CLOSE`]; keel's `refs` module is the only place that turns them into
//! `${...}` (and escapes literal `${`), so nothing here writes an interpolation.

use std::fmt;

use serde::{Serialize, Serializer};

/// Opens an embedded expression inside a string (Unicode private use, never in user text).
pub const OPEN: char = '\u{F8F0}';
/// Closes an embedded expression.
pub const CLOSE: char = '\u{F8F1}';

/// A Terraform expression such as `aws_vpc.main.id`.
///
/// Serializes as a JSON string template (`"${aws_vpc.main.id}"` once rendered); formatting
/// it with `{}` embeds it into a larger template, e.g. `format!("{}/*", bucket.arn())`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Expr(String);

impl Expr {
    /// Wraps raw HCL expression text. Only keel's constructs call this, with text they
    /// derive from resource addresses and attribute names, never from user input.
    pub fn raw(text: impl Into<String>) -> Self {
        Expr(text.into())
    }

    /// The raw expression text, without `${}`.
    pub fn as_hcl(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{OPEN}{}{CLOSE}", self.0)
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl From<Expr> for serde_json::Value {
    fn from(e: Expr) -> Self {
        serde_json::Value::String(e.to_string())
    }
}

impl From<&Expr> for serde_json::Value {
    fn from(e: &Expr) -> Self {
        serde_json::Value::String(e.to_string())
    }
}

/// A typed reference to one attribute of a block, e.g. `aws_db_instance.main.address` as a
/// `Attr<String>`: the generated bindings ([`crate::aws`]) return these, so a value of
/// the wrong type (a number where a string is wanted) does not compile. It embeds like an
/// [`Expr`] (`{}` in `format!`) and converts into one.
pub struct Attr<T> {
    expr: Expr,
    ty: std::marker::PhantomData<fn() -> T>,
}

impl<T> Attr<T> {
    /// The untyped expression.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }
}

impl<T> Clone for Attr<T> {
    fn clone(&self) -> Self {
        Attr {
            expr: self.expr.clone(),
            ty: std::marker::PhantomData,
        }
    }
}

impl<T> fmt::Debug for Attr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Attr").field(&self.expr).finish()
    }
}

impl<T> PartialEq for Attr<T> {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr
    }
}

impl<T> fmt::Display for Attr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

impl<T> From<Attr<T>> for Expr {
    fn from(a: Attr<T>) -> Self {
        a.expr
    }
}

impl<T> From<Attr<T>> for serde_json::Value {
    fn from(a: Attr<T>) -> Self {
        a.expr.into()
    }
}

/// Whether a Terraform block is a managed resource or a data source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BlockKind {
    /// `resource "<type>" "<name>"`.
    Resource,
    /// `data "<type>" "<name>"`.
    Data,
}

/// The address of one resource or data source, e.g. `aws_vpc.main`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ref {
    kind: BlockKind,
    ty: String,
    name: String,
}

impl Ref {
    /// A reference to `resource.<ty>.<name>`.
    pub fn resource(ty: &str, name: &str) -> Self {
        Ref {
            kind: BlockKind::Resource,
            ty: ty.to_owned(),
            name: name.to_owned(),
        }
    }

    /// A reference to `data.<ty>.<name>`.
    pub fn data(ty: &str, name: &str) -> Self {
        Ref {
            kind: BlockKind::Data,
            ty: ty.to_owned(),
            name: name.to_owned(),
        }
    }

    /// Resource or data source.
    pub fn kind(&self) -> BlockKind {
        self.kind
    }

    /// Resource type, e.g. `aws_vpc`.
    pub fn ty(&self) -> &str {
        &self.ty
    }

    /// Local name, e.g. `main`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address as Terraform writes it: `aws_vpc.main` or `data.aws_region.current`.
    pub fn address(&self) -> String {
        match self.kind {
            BlockKind::Resource => format!("{}.{}", self.ty, self.name),
            BlockKind::Data => format!("data.{}.{}", self.ty, self.name),
        }
    }

    /// An attribute of this block, e.g. `aws_vpc.main.id`.
    pub fn attr(&self, attribute: &str) -> Expr {
        Expr::raw(format!("{}.{attribute}", self.address()))
    }

    /// An attribute of this block with its schema type (the generated bindings' getters).
    pub fn typed<T>(&self, attribute: &str) -> Attr<T> {
        Attr {
            expr: self.attr(attribute),
            ty: std::marker::PhantomData,
        }
    }

    /// The `id` attribute.
    pub fn id(&self) -> Expr {
        self.attr("id")
    }

    /// The `arn` attribute.
    pub fn arn(&self) -> Expr {
        self.attr("arn")
    }

    /// The `name` attribute.
    pub fn name_attr(&self) -> Expr {
        self.attr("name")
    }
}
