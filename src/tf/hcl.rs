//! Terraform JSON as HCL, for people who read HCL (`keel show --hcl`). The JSON stays what
//! is applied; this is a view of it, built with hcl-rs.
//!
//! Mapping (Terraform's JSON syntax, read backwards): top-level keys become blocks with
//! their labels (`resource "aws_vpc" "main" {}`); inside a block, an array of objects is a
//! repeated nested block and an object is an attribute (a map such as `tags`), except the
//! blocks keel writes as one object (`lifecycle`, `default_tags`, `required_providers`,
//! `backend`). A string that is exactly one interpolation (`"${aws_vpc.main.id}"`) becomes
//! the bare expression, other templates stay quoted templates, and the meta-arguments that
//! JSON writes as strings but HCL as references (`depends_on`, `ignore_changes`, `moved`'s
//! `from`/`to`) become references. `//` comments become `#` comments above their block.
//! [`to_json`] maps the parsed HCL back, so a test can prove nothing was lost.

use hcl::expr::{Expression, Object, ObjectKey, TemplateExpr};
use hcl::template::{Element, Template};
use hcl::{Attribute, Block, Body, Identifier, Structure};
use serde_json::{Map, Value};

/// Nested blocks keel writes as a single JSON object rather than an array of objects:
/// `lifecycle`, `required_providers`, and the provider's single blocks (the generated
/// `aws::provider::Aws` writes them with `Body::set_block_object`).
const OBJECT_BLOCKS: &[&str] = &[
    "lifecycle",
    "default_tags",
    "ignore_tags",
    "required_providers",
];

/// Attributes whose JSON strings are references or keywords, not templates.
const REFERENCE_ATTRIBUTES: &[&str] = &[
    "depends_on",
    "ignore_changes",
    "replace_triggered_by",
    "provider",
];

/// A JSON shape this view cannot express as HCL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct HclError {
    /// Where in the JSON document (`resource.aws_vpc.main.tags`).
    pub path: String,
    /// What was found.
    pub message: String,
}

fn err(path: &str, message: impl Into<String>) -> HclError {
    HclError {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// One `*.tf.json` document as an HCL body (comments left out).
pub fn to_body(doc: &Value) -> Result<Body, HclError> {
    Ok(Body::from(
        top_level_blocks(doc)?
            .into_iter()
            .map(|(_, b)| Structure::Block(b))
            .collect::<Vec<_>>(),
    ))
}

/// One `*.tf.json` document as HCL text: each top-level block, preceded by its `//` comment
/// as `#` lines.
pub fn to_hcl(doc: &Value) -> Result<String, HclError> {
    let mut out = String::new();
    for (comment, block) in top_level_blocks(doc)? {
        if !out.is_empty() {
            out.push('\n');
        }
        for line in comment.iter().flat_map(|c| c.split("; ")) {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
        let text = hcl::format::to_string(&Body::from(vec![Structure::Block(block)]))
            .map_err(|e| err("", format!("hcl-rs cannot format the block: {e}")))?;
        out.push_str(&text);
    }
    Ok(out)
}

/// The top-level blocks of a document, each with the `//` comment of its body.
fn top_level_blocks(doc: &Value) -> Result<Vec<(Option<String>, Block)>, HclError> {
    let root = doc
        .as_object()
        .ok_or_else(|| err("", "expected a JSON object at the root"))?;
    let mut blocks = Vec::new();
    for (key, value) in root {
        match key.as_str() {
            "//" => {}
            "terraform" => {
                let body = object(value, key)?;
                let mut b = Block::builder("terraform");
                for (k, v) in body {
                    let path = format!("terraform.{k}");
                    b = match k.as_str() {
                        "//" => b,
                        "backend" => {
                            let mut b = b;
                            for (name, cfg) in object(v, &path)? {
                                b = b.add_block(
                                    Block::builder("backend")
                                        .add_label(name.as_str())
                                        .add_structures(attributes(object(cfg, &path)?, &path)?)
                                        .build(),
                                );
                            }
                            b
                        }
                        "required_providers" => b.add_block(
                            Block::builder("required_providers")
                                .add_structures(attributes(object(v, &path)?, &path)?)
                                .build(),
                        ),
                        _ => b.add_attribute(Attribute::new(ident(k, &path)?, expr(v, &path)?)),
                    };
                }
                blocks.push((comment(value), b.build()));
            }
            "provider" | "output" => {
                for (name, body) in object(value, key)? {
                    let path = format!("{key}.{name}");
                    let bodies: Vec<&Value> = match body {
                        Value::Array(list) => list.iter().collect(),
                        one => vec![one],
                    };
                    for body in bodies {
                        let structures = if key == "output" {
                            attributes(object(body, &path)?, &path)?
                        } else {
                            block_body(object(body, &path)?, &path)?
                        };
                        let block = Block::builder(key.as_str())
                            .add_label(name.as_str())
                            .add_structures(structures)
                            .build();
                        blocks.push((comment(body), block));
                    }
                }
            }
            "resource" | "data" => {
                for (ty, named) in object(value, key)? {
                    for (name, body) in object(named, &format!("{key}.{ty}"))? {
                        let path = format!("{key}.{ty}.{name}");
                        let block = Block::builder(key.as_str())
                            .add_label(ty.as_str())
                            .add_label(name.as_str())
                            .add_structures(block_body(object(body, &path)?, &path)?)
                            .build();
                        blocks.push((comment(body), block));
                    }
                }
            }
            "locals" => {
                let block = Block::builder("locals")
                    .add_structures(attributes(object(value, key)?, key)?)
                    .build();
                blocks.push((comment(value), block));
            }
            "moved" => {
                let list = value
                    .as_array()
                    .ok_or_else(|| err(key, "expected an array of moved blocks"))?;
                for (i, m) in list.iter().enumerate() {
                    let path = format!("moved[{i}]");
                    let mut b = Block::builder("moved");
                    for (k, v) in object(m, &path)? {
                        let s = v
                            .as_str()
                            .ok_or_else(|| err(&path, format!("expected `{k}` as an address")))?;
                        b = b.add_attribute(Attribute::new(ident(k, &path)?, reference(s, &path)?));
                    }
                    blocks.push((None, b.build()));
                }
            }
            other => {
                return Err(err(
                    other,
                    "a top-level key keel does not write; expected terraform, provider, resource, data, locals, output or moved",
                ));
            }
        }
    }
    Ok(blocks)
}

/// The `//` comment of a block body.
fn comment(body: &Value) -> Option<String> {
    body.get("//").and_then(Value::as_str).map(str::to_owned)
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, HclError> {
    value
        .as_object()
        .ok_or_else(|| err(path, format!("expected an object, found {value}")))
}

fn ident(name: &str, path: &str) -> Result<Identifier, HclError> {
    Identifier::new(name).map_err(|_| err(path, format!("{name:?} is not an HCL identifier")))
}

/// Every key of `body` as an attribute (`output`, `locals`, backend settings).
fn attributes(body: &Map<String, Value>, path: &str) -> Result<Vec<Structure>, HclError> {
    body.iter()
        .filter(|(k, _)| k.as_str() != "//")
        .map(|(k, v)| {
            let path = format!("{path}.{k}");
            Ok(Structure::Attribute(Attribute::new(
                ident(k, &path)?,
                expr(v, &path)?,
            )))
        })
        .collect()
}

/// The body of a resource, data source, provider or nested block: attributes first, then
/// nested blocks, as `terraform fmt` users write them.
fn block_body(body: &Map<String, Value>, path: &str) -> Result<Vec<Structure>, HclError> {
    let mut out = block_body_in_key_order(body, path)?;
    out.sort_by_key(|s| matches!(s, Structure::Block(_)));
    Ok(out)
}

fn block_body_in_key_order(
    body: &Map<String, Value>,
    path: &str,
) -> Result<Vec<Structure>, HclError> {
    let mut out = Vec::new();
    for (k, v) in body {
        let path = format!("{path}.{k}");
        match v {
            _ if k == "//" => {}
            Value::Object(inner) if OBJECT_BLOCKS.contains(&k.as_str()) => {
                out.push(Structure::Block(
                    Block::builder(ident(k, &path)?)
                        .add_structures(block_body(inner, &path)?)
                        .build(),
                ));
            }
            Value::Array(list) if !list.is_empty() && list.iter().all(Value::is_object) => {
                for (i, item) in list.iter().enumerate() {
                    let path = format!("{path}[{i}]");
                    out.push(Structure::Block(
                        Block::builder(ident(k, &path)?)
                            .add_structures(block_body(object(item, &path)?, &path)?)
                            .build(),
                    ));
                }
            }
            _ if REFERENCE_ATTRIBUTES.contains(&k.as_str()) => {
                let value = match v {
                    Value::String(s) => reference(s, &path)?,
                    Value::Array(list) => Expression::Array(
                        list.iter()
                            .map(|item| {
                                item.as_str()
                                    .ok_or_else(|| err(&path, "expected references as strings"))
                                    .and_then(|s| reference(s, &path))
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    _ => return Err(err(&path, "expected a reference or a list of them")),
                };
                out.push(Structure::Attribute(Attribute::new(
                    ident(k, &path)?,
                    value,
                )));
            }
            _ => out.push(Structure::Attribute(Attribute::new(
                ident(k, &path)?,
                expr(v, &path)?,
            ))),
        }
    }
    Ok(out)
}

/// A JSON value in an expression position.
fn expr(value: &Value, path: &str) -> Result<Expression, HclError> {
    Ok(match value {
        Value::Null => Expression::Null,
        Value::Bool(b) => Expression::Bool(*b),
        Value::Number(n) => {
            let n = if let Some(i) = n.as_i64() {
                hcl::Number::from(i)
            } else if let Some(u) = n.as_u64() {
                hcl::Number::from(u)
            } else {
                n.as_f64()
                    .and_then(hcl::Number::from_f64)
                    .ok_or_else(|| err(path, format!("{n} is not a finite number")))?
            };
            Expression::Number(n)
        }
        Value::String(s) => template(s, path)?,
        Value::Array(list) => Expression::Array(
            list.iter()
                .map(|v| expr(v, path))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut object = Object::new();
            for (k, v) in map {
                let key = match Identifier::new(k.as_str()) {
                    Ok(id) => ObjectKey::Identifier(id),
                    Err(_) => ObjectKey::Expression(template(k, path)?),
                };
                object.insert(key, expr(v, &format!("{path}.{k}"))?);
            }
            Expression::Object(object)
        }
    })
}

/// A Terraform JSON string (a template): the bare expression when it is exactly one
/// interpolation, a plain string when it has none, else a quoted template.
fn template(s: &str, path: &str) -> Result<Expression, HclError> {
    let parsed: Template = s
        .parse()
        .map_err(|e| err(path, format!("{s:?} is not a valid template: {e}")))?;
    match parsed.elements() {
        [Element::Interpolation(i)] if i.strip == Default::default() => Ok(i.expr.clone()),
        elements if elements.iter().all(|e| matches!(e, Element::Literal(_))) => {
            Ok(Expression::String(
                elements
                    .iter()
                    .filter_map(|e| match e {
                        Element::Literal(l) => Some(l.as_str()),
                        _ => None,
                    })
                    .collect(),
            ))
        }
        elements => {
            // hcl-rs writes a quoted template's text as it holds it, but reads quotes,
            // backslashes and control characters in it back as escapes: such a literal part
            // would not survive the round trip, so it is refused rather than misprinted.
            if let Some(l) = elements.iter().find_map(|e| match e {
                Element::Literal(l) if l.contains(['"', '\\']) || l.contains(char::is_control) => {
                    Some(l)
                }
                _ => None,
            }) {
                return Err(err(
                    path,
                    format!(
                        "the template {s:?} has a quote, backslash or control character in its text ({l:?}), which hcl-rs cannot print in a quoted template"
                    ),
                ));
            }
            let mut source = String::new();
            for e in elements {
                match e {
                    Element::Literal(l) => source.push_str(&escape_literal(l)),
                    other => source.push_str(&hcl::format::to_string(other).map_err(|e| {
                        err(path, format!("hcl-rs cannot format part of {s:?}: {e}"))
                    })?),
                }
            }
            Ok(Expression::TemplateExpr(Box::new(
                TemplateExpr::QuotedString(source),
            )))
        }
    }
}

/// A literal part of a quoted template, as hcl-rs holds it: template markers doubled
/// (quotes and backslashes are escaped by the formatter).
fn escape_literal(s: &str) -> String {
    s.replace("${", "$${").replace("%{", "%%{")
}

/// A reference written as a JSON string (`aws_vpc.main`, `task_definition`, `all`).
fn reference(s: &str, path: &str) -> Result<Expression, HclError> {
    let body: Body = hcl::parse(&format!("x = {s}\n"))
        .map_err(|e| err(path, format!("{s:?} is not a reference: {e}")))?;
    match body.into_attributes().next() {
        Some(a) if matches!(a.expr, Expression::Variable(_) | Expression::Traversal(_)) => {
            Ok(a.expr)
        }
        _ => Err(err(path, format!("{s:?} is not a reference"))),
    }
}

/// HCL (parsed back) as Terraform JSON, the inverse of [`to_body`] for what keel writes.
pub fn to_json(body: &Body) -> Result<Value, HclError> {
    let mut root = Map::new();
    for block in body.blocks() {
        let kind = block.identifier.as_str();
        let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
        match (kind, labels.as_slice()) {
            ("terraform", []) => {
                let mut t = Map::new();
                for a in block.body.attributes() {
                    t.insert(a.key.to_string(), json_of(&a.expr)?);
                }
                for b in block.body.blocks() {
                    match (b.identifier.as_str(), b.labels.as_slice()) {
                        ("required_providers", []) => {
                            t.insert("required_providers".into(), attrs_json(&b.body)?);
                        }
                        ("backend", [name]) => {
                            let backend = t
                                .entry("backend")
                                .or_insert_with(|| Value::Object(Map::new()));
                            if let Some(backend) = backend.as_object_mut() {
                                backend.insert(name.as_str().to_owned(), attrs_json(&b.body)?);
                            }
                        }
                        (other, _) => return Err(err("terraform", format!("unexpected {other}"))),
                    }
                }
                root.insert("terraform".into(), Value::Object(t));
            }
            ("provider" | "output", [name]) => {
                let body = if kind == "output" {
                    attrs_json(&block.body)?
                } else {
                    body_json(&block.body)?
                };
                nested(&mut root, &[kind]).insert((*name).to_owned(), body);
            }
            ("resource" | "data", [ty, name]) => {
                nested(&mut root, &[kind, ty]).insert((*name).to_owned(), body_json(&block.body)?);
            }
            ("locals", []) => {
                let locals = attrs_json(&block.body)?;
                root.insert("locals".into(), locals);
            }
            ("moved", []) => {
                let mut m = Map::new();
                for a in block.body.attributes() {
                    m.insert(a.key.to_string(), Value::String(source(&a.expr)?));
                }
                let list = root
                    .entry("moved")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Some(list) = list.as_array_mut() {
                    list.push(Value::Object(m));
                }
            }
            (other, _) => return Err(err(other, "a block keel does not write")),
        }
    }
    Ok(Value::Object(root))
}

/// The object at `root[path[0]][path[1]]...`, created on the way.
fn nested<'a>(root: &'a mut Map<String, Value>, path: &[&str]) -> &'a mut Map<String, Value> {
    let mut here = root;
    for key in path {
        let next = here
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        // Just made an object if it was not one.
        here = match next {
            Value::Object(map) => map,
            _ => unreachable!("replaced by an object above"),
        };
    }
    here
}

fn attrs_json(body: &Body) -> Result<Value, HclError> {
    let mut out = Map::new();
    for a in body.attributes() {
        out.insert(a.key.to_string(), json_of(&a.expr)?);
    }
    Ok(Value::Object(out))
}

fn body_json(body: &Body) -> Result<Value, HclError> {
    let mut out = Map::new();
    for a in body.attributes() {
        let key = a.key.to_string();
        let value = if REFERENCE_ATTRIBUTES.contains(&key.as_str()) {
            match &a.expr {
                Expression::Array(items) => Value::Array(
                    items
                        .iter()
                        .map(|e| source(e).map(Value::String))
                        .collect::<Result<_, _>>()?,
                ),
                e => Value::String(source(e)?),
            }
        } else {
            json_of(&a.expr)?
        };
        out.insert(key, value);
    }
    for b in body.blocks() {
        let key = b.identifier.to_string();
        let inner = body_json(&b.body)?;
        if OBJECT_BLOCKS.contains(&key.as_str()) {
            out.insert(key, inner);
        } else {
            let list = out.entry(key).or_insert_with(|| Value::Array(Vec::new()));
            if let Some(list) = list.as_array_mut() {
                list.push(inner);
            }
        }
    }
    Ok(Value::Object(out))
}

/// An expression as HCL source.
fn source(e: &Expression) -> Result<String, HclError> {
    hcl::format::to_string(e).map_err(|x| err("", format!("hcl-rs cannot format {e:?}: {x}")))
}

/// An expression as the Terraform JSON value that means the same.
fn json_of(e: &Expression) -> Result<Value, HclError> {
    Ok(match e {
        Expression::Null => Value::Null,
        Expression::Bool(b) => Value::Bool(*b),
        Expression::Number(n) => {
            serde_json::to_value(n).map_err(|x| err("", format!("number {n}: {x}")))?
        }
        Expression::String(s) => Value::String(escape_literal(s)),
        Expression::TemplateExpr(t) => {
            let template =
                Template::from_expr(t).map_err(|x| err("", format!("template {t:?}: {x}")))?;
            let mut s = String::new();
            for element in template.elements() {
                match element {
                    Element::Literal(l) => s.push_str(&escape_literal(l)),
                    other => s.push_str(
                        &hcl::format::to_string(other)
                            .map_err(|x| err("", format!("template part: {x}")))?,
                    ),
                }
            }
            Value::String(s)
        }
        Expression::Array(items) => {
            Value::Array(items.iter().map(json_of).collect::<Result<_, _>>()?)
        }
        Expression::Object(object) => {
            let mut out = Map::new();
            for (k, v) in object {
                let key = match k {
                    ObjectKey::Identifier(id) => id.to_string(),
                    ObjectKey::Expression(e) => match json_of(e)? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    },
                    other => return Err(err("", format!("unexpected object key {other:?}"))),
                };
                out.insert(key, json_of(v)?);
            }
            Value::Object(out)
        }
        other => Value::String(format!("${{{}}}", source(other)?)),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn round_trip(doc: &Value) -> String {
        let text = to_hcl(doc).unwrap();
        let parsed: Body = hcl::parse(&text).unwrap();
        assert_eq!(parsed, to_body(doc).unwrap(), "{text}");
        let mut expected = doc.clone();
        strip_comments(&mut expected);
        assert_eq!(to_json(&parsed).unwrap(), expected, "{text}");
        text
    }

    /// `//` keys are comments: the HCL keeps them as `#` lines, not as structure.
    pub(crate) fn strip_comments(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("//");
                map.values_mut().for_each(strip_comments);
            }
            Value::Array(list) => list.iter_mut().for_each(strip_comments),
            _ => {}
        }
    }

    #[test]
    fn references_become_expressions_and_templates_stay_quoted() {
        let text = round_trip(&json!({"resource": {"aws_subnet": {"a": {
            "//": "checkov:skip=CKV_X:why; keel:allow=rule:because",
            "vpc_id": "${aws_vpc.main.id}",
            "cidr_block": "10.0.0.0/20",
            "description": "arn:${data.aws_partition.p.partition}:x $${literal} %%{x}",
            "ids": "${split(\",\", data.aws_ssm_parameter.p.insecure_value)}",
            "tags": {"Name": "a", "kubernetes.io/role/elb": "1"},
            "depends_on": ["aws_vpc.main"],
            "lifecycle": {"ignore_changes": ["tags"], "create_before_destroy": true},
            "rule": [{"port": 443}, {"port": 80}],
            "count": 2,
            "ratio": 0.5,
        }}}}));
        assert!(
            text.starts_with("# checkov:skip=CKV_X:why\n# keel:allow=rule:because\n"),
            "{text}"
        );
        assert!(text.contains("vpc_id = aws_vpc.main.id"), "{text}");
        assert!(
            text.contains("depends_on = [\n    aws_vpc.main\n  ]"),
            "{text}"
        );
        assert!(
            text.contains("\"arn:${data.aws_partition.p.partition}:x $${literal} %%{x}\""),
            "{text}"
        );
        assert!(text.contains("lifecycle {"), "{text}");
        assert_eq!(text.matches("rule {").count(), 2, "{text}");
    }

    #[test]
    fn the_provider_bindings_single_blocks_are_hcl_blocks() {
        use crate::tf::aws::provider::{Aws, DefaultTags, IgnoreTags};
        let aws = Aws::new()
            .region("eu-west-1")
            .default_tags(
                DefaultTags::new().tags(std::collections::BTreeMap::from([("env", "prod")])),
            )
            .ignore_tags(IgnoreTags::new().key_prefixes(["kubernetes.io/"]));
        let body = crate::tf::bind::Provider::into_body(aws).into_json();
        let text = round_trip(&json!({ "provider": { "aws": body } }));
        assert!(text.contains("default_tags {"), "{text}");
        assert!(text.contains("ignore_tags {"), "{text}");
    }

    #[test]
    fn the_terraform_block_provider_and_moved_blocks() {
        let text = round_trip(&json!({
            "terraform": {"required_version": ">= 1.10.0", "required_providers": {"aws": {"source": "hashicorp/aws", "version": ">= 5.100.0"}},
                "backend": {"s3": {"bucket": "b", "key": "k", "encrypt": true}}},
            "provider": {"aws": {"region": "eu-west-1", "default_tags": {"tags": {"env": "prod"}}}},
            "moved": [{"from": "aws_kms_key.old", "to": "aws_kms_key.new"}],
            "output": {"x": {"description": "d", "value": "${aws_kms_key.new.arn}", "sensitive": true}},
            "locals": {"l": {"a": ["${aws_kms_key.new.arn}"]}},
        }));
        assert!(text.contains("backend \"s3\" {"), "{text}");
        assert!(text.contains("default_tags {"), "{text}");
        assert!(text.contains("from = aws_kms_key.old"), "{text}");
    }

    #[test]
    fn a_quote_in_a_template_is_refused_not_misprinted() {
        let e = to_body(&json!({"locals": {"x": "a \"${local.y}\""}})).unwrap_err();
        assert_eq!(e.path, "locals.x");
        // Without an interpolation it is a plain string, which hcl-rs escapes.
        round_trip(&json!({"locals": {"x": "a \"b\" \\ $${c}\n"}}));
    }

    #[test]
    fn an_unknown_top_level_key_is_an_error() {
        let e = to_body(&json!({"module": {}})).unwrap_err();
        assert_eq!(e.path, "module");
    }
}
