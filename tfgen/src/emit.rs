//! Rust source of the bindings: the two majors' blocks merged member by member, then one
//! module per type (`resource/<name>.rs`, `data/<name>.rs`), the provider configuration's
//! (`provider.rs`) and the `mod.rs` files.
//!
//! A member in both majors is usable as is; a member in one only gets a `*_v5_only` /
//! `*_v6_only` method that takes the matching gate. Where the 6.x schema is partial (a few
//! very large types the shared schema took from CDKTF), 5.x decides names and types.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde_json::Value;

use crate::schema::{PROVIDER_CONFIG, TypeName, V5, V6};

/// Which majors have a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Majors {
    Both,
    Only5,
    Only6,
}

/// One attribute of the merged schema.
struct Attribute {
    name: String,
    majors: Majors,
    required: bool,
    /// Settable (required or optional); false for computed-only.
    settable: bool,
    computed: bool,
    deprecated: bool,
    sensitive: bool,
    ty: Value,
    doc: Option<String>,
}

/// One nested block of the merged schema.
struct Nested {
    name: String,
    majors: Majors,
    mode: String,
    min: u64,
    max: Option<u64>,
    deprecated: bool,
    block: Merged,
}

/// A merged block: attributes and nested blocks, sorted by name.
struct Merged {
    attributes: Vec<Attribute>,
    blocks: Vec<Nested>,
    doc: Option<String>,
}

fn members<'a>(block: Option<&'a Value>, key: &str) -> BTreeMap<&'a str, &'a Value> {
    block
        .and_then(|b| b.get(key))
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default()
}

fn flags(v: Option<&Value>) -> &str {
    v.and_then(|a| a.get("f"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn doc_of(a: Option<&Value>, b: Option<&Value>) -> Option<String> {
    [a, b]
        .into_iter()
        .flatten()
        .find_map(|v| v.get("doc").and_then(Value::as_str).map(str::to_owned))
}

fn majors(in5: bool, in6: bool, v6_partial: bool) -> Majors {
    match (in5, in6) {
        (true, true) => Majors::Both,
        // A partial 6.x block may lack names it has: trust 5.x.
        (true, false) if v6_partial => Majors::Both,
        (true, false) => Majors::Only5,
        _ => Majors::Only6,
    }
}

fn merge(v5: Option<&Value>, v6: Option<&Value>, partial: bool) -> Merged {
    let partial = partial || v6.and_then(|b| b.get("partial")).is_some();
    let a5 = members(v5, "a");
    let a6 = members(v6, "a");
    let names: BTreeSet<&str> = a5.keys().chain(a6.keys()).copied().collect();
    let attributes = names
        .into_iter()
        .map(|name| {
            let (x5, x6) = (a5.get(name).copied(), a6.get(name).copied());
            let majors = majors(x5.is_some(), x6.is_some(), partial);
            // Under a partial 6.x block, 5.x has the exact flags and types.
            let primary = if partial { x5.or(x6) } else { x6.or(x5) };
            let (f5, f6) = (flags(x5), flags(x6));
            let both: Vec<&str> = [x5.map(|_| f5), x6.map(|_| f6)]
                .into_iter()
                .flatten()
                .collect();
            let any = |c: char| both.iter().any(|f| f.contains(c));
            // Settable where every major that has it lets it be set.
            let settable = both.iter().all(|f| f.contains('r') || f.contains('o'));
            let required =
                majors == Majors::Both && !partial && any('r') || (partial && f5.contains('r'));
            let opaque = both.iter().any(|f| f.contains('x'))
                || primary.and_then(|p| p.get("n")).is_some()
                || (x5.is_some()
                    && x6.is_some()
                    && !partial
                    && x5.and_then(|a| a.get("t")) != x6.and_then(|a| a.get("t")));
            Attribute {
                name: name.to_owned(),
                majors,
                required: required && settable,
                settable,
                computed: any('c'),
                deprecated: any('d'),
                sensitive: any('s'),
                ty: if opaque {
                    Value::String("dynamic".into())
                } else {
                    primary
                        .and_then(|p| p.get("t"))
                        .cloned()
                        .unwrap_or(Value::String("dynamic".into()))
                },
                doc: doc_of(x5, x6),
            }
        })
        .collect();
    let b5 = members(v5, "b");
    let b6 = members(v6, "b");
    let names: BTreeSet<&str> = b5.keys().chain(b6.keys()).copied().collect();
    let blocks = names
        .into_iter()
        .map(|name| {
            let (x5, x6) = (b5.get(name).copied(), b6.get(name).copied());
            let primary = if partial { x5.or(x6) } else { x6.or(x5) };
            let num = |v: Option<&Value>, k: &str| v.and_then(|b| b.get(k)).and_then(Value::as_u64);
            let mode = primary
                .and_then(|b| b.get("m"))
                .and_then(Value::as_str)
                .unwrap_or("list")
                .to_owned();
            // The stricter bounds of the two, so a block is valid for both.
            let min = [num(x5, "min"), num(x6, "min")]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(0);
            let max = [num(x5, "max"), num(x6, "max")].into_iter().flatten().min();
            let max = if mode == "single" { Some(1) } else { max };
            Nested {
                name: name.to_owned(),
                majors: majors(x5.is_some(), x6.is_some(), partial),
                mode,
                min: if x5.is_some() && x6.is_some() { min } else { 0 },
                max,
                deprecated: [x5, x6].into_iter().flatten().any(|b| b.get("d").is_some()),
                block: merge(x5, x6, partial),
            }
        })
        .collect();
    Merged {
        attributes,
        blocks,
        doc: doc_of(v5, v6),
    }
}

/// `kms_key` -> `KmsKey`.
fn camel(snake: &str) -> String {
    snake
        .split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// A method name for a member: raw identifier for keywords, `_attr` suffix where it would
/// clash with the builder's own methods.
fn ident(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else if ["new", "into_body", "tf_ref", "into_ref"].contains(&name) {
        format!("{name}_attr")
    } else {
        name.to_owned()
    }
}

/// The Rust marker type of a cty type (see `crate::bind::Val`).
fn rust_type(t: &Value) -> String {
    match t {
        Value::String(s) => match s.as_str() {
            "string" => "String".into(),
            "number" => "f64".into(),
            "bool" => "bool".into(),
            _ => "Json".into(),
        },
        Value::Array(parts) => match (parts.first().and_then(Value::as_str), parts.get(1)) {
            (Some("list" | "set"), Some(inner)) => format!("Vec<{}>", rust_type(inner)),
            (Some("map"), Some(inner)) => format!("BTreeMap<String, {}>", rust_type(inner)),
            _ => "Json".into(),
        },
        _ => "Json".into(),
    }
}

/// How the schema names a cty type, for docs.
fn type_doc(t: &Value) -> String {
    match t {
        Value::String(s) => s.clone(),
        Value::Array(parts) => match (parts.first().and_then(Value::as_str), parts.get(1)) {
            (Some(k @ ("list" | "set" | "map")), Some(inner)) => {
                format!("{k} of {}", type_doc(inner))
            }
            (Some(k), _) => k.to_owned(),
            _ => "dynamic".into(),
        },
        _ => "dynamic".into(),
    }
}

/// One line of schema text as a doc comment: markdown that rustdoc would read as links or
/// HTML is escaped.
fn doc_text(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::new();
    for c in flat.chars() {
        if matches!(c, '[' | ']' | '<' | '>' | '`' | '*' | '_' | '#' | '|') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn attr_summary(a: &Attribute) -> String {
    let mode = if a.required {
        "required"
    } else if a.settable && a.computed {
        "optional, computed by the provider when unset"
    } else if a.settable {
        "optional"
    } else {
        "computed (read-only)"
    };
    let mut s = format!("`{}`: {mode}; {}", a.name, type_doc(&a.ty));
    if a.sensitive {
        s.push_str("; sensitive");
    }
    s
}

fn gate_of(m: Majors) -> Option<(&'static str, &'static str, &'static str)> {
    match m {
        Majors::Both => None,
        Majors::Only5 => Some(("_v5_only", "Only5", V5)),
        Majors::Only6 => Some(("_v6_only", "Only6", V6)),
    }
}

/// The setter's name suffix and gate parameter of a member in `m`, with the doc line that
/// says why a one-major member needs the gate (pushed onto `lines`).
fn gated(m: Majors, lines: &mut Vec<String>) -> (&'static str, String) {
    match gate_of(m) {
        Some((suffix, gate, version)) => {
            lines.push(format!(
                "Only hashicorp/aws {version} has it: a root that sets it is not valid for both majors, so it takes a [`{gate}`] gate."
            ));
            (suffix, format!("_gate: {gate}, "))
        }
        None => ("", String::new()),
    }
}

fn docs(out: &mut String, lines: &[String]) {
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str("///\n");
        }
        let _ = writeln!(out, "/// {l}");
    }
}

fn deprecated(out: &mut String, yes: bool) {
    if yes {
        out.push_str("#[deprecated(note = \"deprecated in the hashicorp/aws schema\")]\n");
    }
}

/// Attributes the provider sets and no configuration should: a resource's `id` (an SDKv2
/// artifact that looks optional) and `tags_all` (the provider merges `default_tags` into
/// it). They keep their getters.
fn provider_managed(a: &Attribute, nested: bool) -> bool {
    !nested && a.computed && (a.name == "id" || a.name == "tags_all")
}

/// Whether a nested block takes one instance (a struct) rather than many.
fn is_single(n: &Nested) -> bool {
    n.max == Some(1)
}

/// What a builder builds: a resource or data source, a block nested in one, or the
/// provider configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Top,
    Nested,
    Provider,
}

/// Emits the builder struct `name` for `block` and, recursively, its nested blocks'.
fn emit_builder(out: &mut String, name: &str, heading: &str, block: &Merged, level: Level) {
    let nested = level == Level::Nested;
    // The provider's single blocks are written as objects, the form keel's roots had
    // before the bindings (`Body::set_block_object`); every other block as a list.
    let set_single = if level == Level::Provider {
        "set_block_object"
    } else {
        "set_block"
    };
    let mut lines = vec![heading.to_owned()];
    if let Some(d) = &block.doc {
        lines.push(doc_text(d));
    }
    docs(out, &lines);
    let _ = writeln!(
        out,
        "#[derive(Debug, Clone, PartialEq)]\n#[must_use]\npub struct {name}(Body);\n"
    );
    // Required members are `new`'s arguments, in schema (alphabetical) order.
    let required_attrs: Vec<&Attribute> = block.attributes.iter().filter(|a| a.required).collect();
    let required_blocks: Vec<&Nested> = block
        .blocks
        .iter()
        .filter(|b| b.min >= 1 && b.majors == Majors::Both)
        .collect();
    let _ = writeln!(out, "impl {name} {{");
    let mut new_doc = String::from("A new block with its required members");
    if required_attrs.is_empty() && required_blocks.is_empty() {
        new_doc = "A new, empty block (it has no required member)".into();
    } else {
        let list: Vec<String> = required_attrs
            .iter()
            .map(|a| format!("`{}`", a.name))
            .chain(required_blocks.iter().map(|b| format!("`{}`", b.name)))
            .collect();
        let _ = write!(new_doc, ": {}", list.join(", "));
    }
    let _ = writeln!(out, "/// {new_doc}.");
    if required_attrs.len() + required_blocks.len() > 7 {
        out.push_str("#[allow(clippy::too_many_arguments)]\n");
    }
    let mut args: Vec<String> = required_attrs
        .iter()
        .map(|a| format!("{}: impl Into<Val<{}>>", ident(&a.name), rust_type(&a.ty)))
        .collect();
    args.extend(
        required_blocks
            .iter()
            .map(|b| format!("{}: {}", ident(&b.name), block_type(name, b, nested))),
    );
    let _ = writeln!(out, "pub fn new({}) -> Self {{", args.join(", "));
    let mutable = if args.is_empty() { "" } else { "mut " };
    let _ = writeln!(out, "let {mutable}body = Body::default();");
    for a in &required_attrs {
        let _ = writeln!(out, "body.set(\"{}\", {});", a.name, ident(&a.name));
    }
    for b in &required_blocks {
        let _ = writeln!(
            out,
            "body.{set_single}(\"{}\", {}.into_body());",
            b.name,
            ident(&b.name)
        );
    }
    let _ = writeln!(out, "{name}(body)\n}}\n");
    for a in block
        .attributes
        .iter()
        .filter(|a| a.settable && !a.required && !provider_managed(a, nested))
    {
        let mut lines = vec![attr_summary(a)];
        if let Some(d) = &a.doc {
            lines.push(doc_text(d));
        }
        let (suffix, gate) = gated(a.majors, &mut lines);
        docs(out, &lines);
        deprecated(out, a.deprecated);
        let _ = writeln!(
            out,
            "pub fn {}{suffix}(mut self, {gate}value: impl Into<Val<{}>>) -> Self {{\nself.0.set(\"{}\", value);\nself\n}}\n",
            ident(&a.name),
            rust_type(&a.ty),
            a.name
        );
    }
    for b in &block.blocks {
        if required_blocks.iter().any(|r| r.name == b.name) && is_single(b) {
            continue;
        }
        let mut lines = vec![block_summary(b)];
        if let Some(d) = &b.block.doc {
            lines.push(doc_text(d));
        }
        let (suffix, gate) = gated(b.majors, &mut lines);
        docs(out, &lines);
        deprecated(out, b.deprecated);
        let ty = block_type(name, b, nested);
        if is_single(b) {
            let _ = writeln!(
                out,
                "pub fn {}{suffix}(mut self, {gate}block: {ty}) -> Self {{\nself.0.{set_single}(\"{}\", block.into_body());\nself\n}}\n",
                ident(&b.name),
                b.name
            );
        } else {
            let _ = writeln!(
                out,
                "pub fn {}{suffix}(mut self, {gate}blocks: impl IntoIterator<Item = {ty}>) -> Self {{\nself.0.push_blocks(\"{}\", blocks.into_iter().map(Nested::into_body));\nself\n}}\n",
                ident(&b.name),
                b.name
            );
        }
    }
    if level == Level::Provider {
        out.push_str("/// Meta-argument `alias`: makes this an additional configuration of the provider (another region, another account), which a block selects with `provider = aws.<alias>`; a root has one configuration without alias.\npub fn alias(mut self, alias: impl Into<String>) -> Self {\nself.0.set::<String>(\"alias\", alias.into());\nself\n}\n\n");
    }
    if level == Level::Top {
        out.push_str("/// Meta-argument `depends_on`: addresses (`aws_x.y`) applied before this block.\npub fn depends_on(mut self, addresses: impl IntoIterator<Item = String>) -> Self {\nself.0.depends_on(addresses);\nself\n}\n\n");
        out.push_str("/// Meta-argument `lifecycle`.\npub fn lifecycle(mut self, lifecycle: Lifecycle) -> Self {\nself.0.lifecycle(lifecycle);\nself\n}\n\n");
    }
    out.push_str("}\n\n");
    if nested {
        let _ = writeln!(
            out,
            "impl Nested for {name} {{\nfn into_body(self) -> Body {{\nself.0\n}}\n}}\n"
        );
    }
    for b in &block.blocks {
        let child = block_type(name, b, nested);
        let heading = format!("The `{}` block ({}).", b.name, block_shape(b));
        emit_builder(out, &child, &heading, &b.block, Level::Nested);
    }
}

fn block_shape(b: &Nested) -> String {
    let bounds = match (b.min, b.max) {
        (0, Some(1)) => "at most one".to_owned(),
        (1, Some(1)) => "exactly one".to_owned(),
        (0, None) => "any number".to_owned(),
        (min, None) => format!("at least {min}"),
        (min, Some(max)) => format!("{min} to {max}"),
    };
    format!("nesting `{}`, {bounds}", b.mode)
}

fn block_summary(b: &Nested) -> String {
    let how = if is_single(b) {
        "Sets the block"
    } else if b.min >= 1 {
        "Adds blocks (the first one is `new`'s argument)"
    } else {
        "Adds blocks (each call appends)"
    };
    format!("`{}` block, {}: {how}.", b.name, block_shape(b))
}

/// The struct name of a nested block: the parent's name (for nested levels) and the
/// block's, in CamelCase.
fn block_type(parent: &str, b: &Nested, nested: bool) -> String {
    if nested {
        format!("{parent}{}", camel(&b.name))
    } else {
        camel(&b.name)
    }
}

/// The source of one type's module (before rustfmt).
pub fn type_module(kind: &str, name: &str, v5: &Value, v6: &Value) -> String {
    let merged = merge(Some(v5), Some(v6), false);
    let short = name.trim_start_matches("aws_");
    let ty = camel(short);
    let (kind_word, block_kind) = if kind == "resource" {
        ("resource", "Resource")
    } else {
        ("data source", "Data")
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "//! `{kind} \"{name}\"`: the typed {kind_word} (generated by tfgen from hashicorp/aws {V5} and {V6}; do not edit).\n"
    );
    // Top-level nested block structs are named by the block alone; their children by path.
    let mut body = String::new();
    emit_top(&mut body, &ty, name, kind_word, &merged);
    let _ = writeln!(
        body,
        "impl Block for {ty} {{\nconst KIND: BlockKind = BlockKind::{block_kind};\nconst TYPE: &'static str = \"{name}\";\ntype Handle = {ty}Ref;\nfn into_body(self) -> Body {{\nself.0\n}}\n}}\n"
    );
    let _ = writeln!(
        body,
        "/// A reference to a `{name}` {kind_word} (what `Config::add` returns): one typed getter per attribute both majors have.\n#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]\npub struct {ty}Ref(Ref);\n"
    );
    let _ = writeln!(
        body,
        "impl From<Ref> for {ty}Ref {{\nfn from(r: Ref) -> Self {{\n{ty}Ref(r)\n}}\n}}\n"
    );
    let _ = writeln!(body, "impl {ty}Ref {{");
    body.push_str("/// The untyped block reference (address, `id`, `arn`).\npub fn tf_ref(&self) -> &Ref {\n&self.0\n}\n\n");
    body.push_str(
        "/// The untyped block reference, by value.\npub fn into_ref(self) -> Ref {\nself.0\n}\n\n",
    );
    for a in merged
        .attributes
        .iter()
        .filter(|a| a.majors == Majors::Both && (a.computed || a.required))
    {
        let mut lines = vec![attr_summary(a)];
        if let Some(d) = &a.doc {
            lines.push(doc_text(d));
        }
        docs(&mut body, &lines);
        deprecated(&mut body, a.deprecated);
        let _ = writeln!(
            body,
            "pub fn {}(&self) -> Attr<{}> {{\nself.0.typed(\"{}\")\n}}\n",
            ident(&a.name),
            rust_type(&a.ty),
            a.name
        );
    }
    body.push_str("}\n");
    out.push_str(&uses_of(
        &body,
        "use crate::expr::{Attr, BlockKind, Ref};\n",
    ));
    out.push_str(&body);
    out
}

/// The `use` lines a module whose code is `body` needs: `BTreeMap`, `serde_json::Value`,
/// `expr` (given), and the `bind` names it mentions.
fn uses_of(body: &str, expr: &str) -> String {
    // Code lines only: doc comments name types too.
    let words: BTreeSet<&str> = body
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .flat_map(|l| l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .collect();
    let mut out = String::new();
    if words.contains("BTreeMap") {
        out.push_str("use std::collections::BTreeMap;\n\n");
    }
    if words.contains("Value") {
        out.push_str("use serde_json::Value;\n\n");
    }
    out.push_str(expr);
    let bind: Vec<&str> = [
        "Block",
        "Body",
        "Json",
        "Lifecycle",
        "Nested",
        "Only5",
        "Only6",
        "Provider",
        "Val",
    ]
    .into_iter()
    .filter(|w| words.contains(w))
    .collect();
    let _ = writeln!(out, "use crate::bind::{{{}}};\n", bind.join(", "));
    out
}

/// Provider blocks the schema gives as lists without `max_items` although each is one
/// setting of the provider (`terraform validate` accepts two, and what a second one means
/// is not documented): bound as single blocks, so giving one twice is keel's set-twice
/// error instead of a second block.
const PROVIDER_SINGLE: &[&str] = &["default_tags", "ignore_tags"];

/// The source of the provider configuration's module `provider.rs` (before rustfmt), from
/// the two majors' `provider_config` blocks.
pub fn provider_module(v5: &Value, v6: &Value) -> String {
    let mut merged = merge(Some(v5), Some(v6), false);
    for b in merged
        .blocks
        .iter_mut()
        .filter(|b| PROVIDER_SINGLE.contains(&b.name.as_str()))
    {
        b.max = Some(1);
        let note = "The schema sets no max_items; keel binds it as one block, since it is one setting of the provider.";
        b.block.doc = Some(match b.block.doc.take() {
            Some(doc) => format!("{doc} {note}"),
            None => note.to_owned(),
        });
    }
    let mut body = String::new();
    let heading = "`provider \"aws\"`: the provider configuration of a root (every member is optional; `alias` makes an additional one).".to_owned();
    emit_builder(&mut body, "Aws", &heading, &merged, Level::Provider);
    body.push_str("impl Provider for Aws {\nconst NAME: &'static str = \"aws\";\nfn into_body(self) -> Body {\nself.0\n}\n}\n");
    let mut out = format!(
        "//! `provider \"aws\"`: the typed provider configuration (generated by tfgen from hashicorp/aws {V5} and {V6}; do not edit).\n\n"
    );
    out.push_str(&uses_of(&body, ""));
    out.push_str(&body);
    out
}

fn emit_top(out: &mut String, ty: &str, name: &str, kind_word: &str, merged: &Merged) {
    let heading = format!(
        "`{name}` ({kind_word}): `new` takes the required attributes, one method per other member."
    );
    emit_builder(out, ty, &heading, merged, Level::Top);
}

/// Every file of `tf-aws/src/aws/`, by path relative to it (before rustfmt).
pub fn bindings(
    types: &BTreeSet<TypeName>,
    v5: &Value,
    v6: &Value,
) -> Result<BTreeMap<String, String>, String> {
    let mut files = BTreeMap::new();
    let provider = |s: &Value, v: &str| {
        s.get(PROVIDER_CONFIG).cloned().ok_or_else(|| {
            format!("the trimmed {v} schema has no {PROVIDER_CONFIG}; run `cargo run -p keel-tfgen -- schema`")
        })
    };
    files.insert(
        "provider.rs".to_owned(),
        provider_module(&provider(v5, V5)?, &provider(v6, V6)?),
    );
    let mut mods: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for (kind, name) in types {
        let get = |s: &Value, v: &str| {
            s.get(kind)
                .and_then(|k| k.get(name))
                .cloned()
                .ok_or_else(|| format!("{kind} {name} is missing from the trimmed {v} schema; run `cargo run -p keel-tfgen -- schema`"))
        };
        let (b5, b6) = (get(v5, V5)?, get(v6, V6)?);
        let short = name.trim_start_matches("aws_").to_owned();
        let dir = if kind == "resource" {
            "resource"
        } else {
            "data"
        };
        files.insert(
            format!("{dir}/{short}.rs"),
            type_module(kind, name, &b5, &b6),
        );
        mods.entry(dir)
            .or_default()
            .push((short, camel(name.trim_start_matches("aws_"))));
    }
    let mut root = format!(
        "//! Typed hashicorp/aws bindings, generated by tfgen (`cargo run -p keel-tfgen -- bindings`)\n\
         //! from the trimmed schemas of {V5} and {V6} in `tfgen/schema/`; do not edit.\n\
         //!\n\
         //! Every type keel uses has a builder (`new` takes the required attributes) and a\n\
         //! typed reference (`Config::add` returns it; its getters are `Attr<T>`); the\n\
         //! provider configuration is [`provider::Aws`].\n\
         //! Members only one major has need a gate ([`crate::bind::Only5`] /\n\
         //! [`crate::bind::Only6`]).\n\
         #![allow(\n    deprecated,\n    clippy::new_without_default,\n    clippy::should_implement_trait,\n    clippy::too_many_arguments,\n    clippy::wrong_self_convention\n)]\n\n"
    );
    root.push_str("pub mod provider;\n");
    for (dir, entries) in &mods {
        let what = if *dir == "resource" {
            "Managed resources"
        } else {
            "Data sources"
        };
        let _ = writeln!(root, "pub mod {dir};");
        let mut m = format!("//! {what} (generated by tfgen; do not edit).\n\n");
        for (short, _) in entries {
            let _ = writeln!(m, "pub mod {short};");
        }
        m.push('\n');
        for (short, ty) in entries {
            let _ = writeln!(m, "pub use {short}::{{{ty}, {ty}Ref}};");
        }
        files.insert(format!("{dir}/mod.rs"), m);
    }
    files.insert("mod.rs".into(), root);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{provider_module, type_module};

    #[test]
    fn members_get_their_shape_and_one_major_members_a_gate() {
        let v5 = json!({"a": {
            "name": {"f": "r", "t": "string"},
            "arn": {"f": "c", "t": "string"},
            "old": {"f": "o", "t": "bool"},
            "size": {"f": "od", "t": "number"},
        }, "b": {
            "one": {"m": "list", "max": 1, "a": {"x": {"f": "o", "t": "string"}}},
            "many": {"m": "set", "a": {"y": {"f": "r", "t": ["list", "string"]}}},
        }});
        let v6 = json!({"a": {
            "name": {"f": "r", "t": "string"},
            "arn": {"f": "c", "t": "string"},
            "region": {"f": "oc", "t": "string"},
            "size": {"f": "o", "t": "number"},
        }, "b": {
            "one": {"m": "list", "max": 1, "a": {"x": {"f": "o", "t": "string"}}},
            "many": {"m": "set", "a": {"y": {"f": "r", "t": ["list", "string"]}}},
        }});
        let src = type_module("resource", "aws_thing", &v5, &v6);
        assert!(
            src.contains("pub fn new(name: impl Into<Val<String>>) -> Self"),
            "{src}"
        );
        assert!(
            src.contains(
                "pub fn region_v6_only(mut self, _gate: Only6, value: impl Into<Val<String>>)"
            ),
            "{src}"
        );
        assert!(
            src.contains("pub fn old_v5_only(mut self, _gate: Only5, value: impl Into<Val<bool>>)"),
            "{src}"
        );
        assert!(src.contains("#[deprecated(note = \"deprecated in the hashicorp/aws schema\")]\npub fn size(mut self, value: impl Into<Val<f64>>)"), "{src}");
        assert!(
            src.contains("pub fn one(mut self, block: One) -> Self"),
            "{src}"
        );
        assert!(
            src.contains("pub fn many(mut self, blocks: impl IntoIterator<Item = Many>) -> Self"),
            "{src}"
        );
        assert!(
            src.contains("pub fn new(y: impl Into<Val<Vec<String>>>) -> Self"),
            "{src}"
        );
        // Computed-only: a getter on the reference, no builder method.
        assert!(src.contains("pub fn arn(&self) -> Attr<String>"), "{src}");
        assert!(!src.contains("pub fn arn(mut self"), "{src}");
        // One-major attributes have no ungated getter.
        assert!(!src.contains("pub fn region(&self)"), "{src}");
    }

    #[test]
    fn the_provider_gets_a_builder_with_alias_and_single_blocks_as_objects() {
        let block = |extra: serde_json::Value| {
            let mut b = json!({"a": {
                "region": {"f": "o", "t": "string"},
                "allowed_account_ids": {"f": "o", "t": ["set", "string"]},
            }, "b": {
                "default_tags": {"m": "list", "a": {"tags": {"f": "o", "t": ["map", "string"]}}},
                "assume_role": {"m": "list", "a": {"role_arn": {"f": "o", "t": "string"}}},
            }});
            if let Some((k, v)) = extra.as_object().and_then(|o| o.iter().next()) {
                b["a"][k] = v.clone();
            }
            b
        };
        let v5 = block(json!({}));
        let v6 = block(json!({"tag_policy_compliance": {"f": "o", "t": "string"}}));
        let src = provider_module(&v5, &v6);
        assert!(src.contains("pub struct Aws(Body);"), "{src}");
        assert!(src.contains("impl Provider for Aws {"), "{src}");
        assert!(src.contains("const NAME: &'static str = \"aws\";"), "{src}");
        assert!(
            src.contains("pub fn alias(mut self, alias: impl Into<String>) -> Self"),
            "{src}"
        );
        // The schema's unbounded default_tags is one setting: a struct, written as an object.
        assert!(
            src.contains("pub fn default_tags(mut self, block: DefaultTags) -> Self {\nself.0.set_block_object(\"default_tags\""),
            "{src}"
        );
        assert!(
            src.contains(
                "pub fn assume_role(mut self, blocks: impl IntoIterator<Item = AssumeRole>)"
            ),
            "{src}"
        );
        assert!(
            src.contains("pub fn tag_policy_compliance_v6_only(mut self, _gate: Only6,"),
            "{src}"
        );
        // No resource meta-arguments on a provider.
        assert!(!src.contains("pub fn depends_on"), "{src}");
        assert!(!src.contains("pub fn lifecycle"), "{src}");
    }
}
