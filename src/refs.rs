//! Typed Terraform expressions: the only place keel writes a `${...}` interpolation.
//!
//! Constructs hand each other [`Expr`] values (`vpc.id()`, `role.arn()`), never strings
//! they built themselves. While the model is being built an expression travels inside an
//! ordinary `String` between two private-use sentinel characters; [`finalize_string`] turns
//! those into `${...}` at render time and escapes every literal `${` / `%{` as `$${` / `%%{`,
//! so text that merely looks like an interpolation can never become one.
//!
//! The types themselves ([`Expr`], [`Attr`], [`Ref`]) live in `keel-tf-aws`, beside the
//! generated bindings that return them, and write only the sentinels.

use serde::{Serialize, Serializer};

pub use keel_tf_aws::expr::{Attr, BlockKind, Expr, Ref};
use keel_tf_aws::expr::{CLOSE, OPEN};

/// `jsonencode(<value>)`: a JSON document (e.g. ECS container definitions) built from a
/// value that Terraform evaluates, so references inside it resolve and the generated file
/// shows it as structured data rather than an escaped string.
pub fn jsonencode(value: &Expr) -> Expr {
    Expr::raw(format!("jsonencode({})", value.as_hcl()))
}

/// Whether a model string is a literal (holds no reference or expression).
pub fn is_literal(s: &str) -> bool {
    !s.contains(OPEN)
}

/// Turns a model string into its rendered form: embedded expressions become `${...}`, and
/// literal `${` / `%{` are escaped as `$${` / `%%{`.
pub fn finalize_string(s: &str) -> String {
    finalized(s).into_owned()
}

/// [`finalize_string`] without a copy when the string renders as it is (most do).
pub fn finalized(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains([OPEN, '$', '%']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&escape_literal(&rest[..start]));
        let after = &rest[start + OPEN.len_utf8()..];
        match after.find(CLOSE) {
            Some(end) => {
                out.push_str("${");
                out.push_str(&after[..end]);
                out.push('}');
                rest = &after[end + CLOSE.len_utf8()..];
            }
            None => {
                // An unmatched sentinel cannot come from `Expr`; keep the text literal.
                out.push_str(&escape_literal(after));
                rest = "";
            }
        }
    }
    out.push_str(&escape_literal(rest));
    std::borrow::Cow::Owned(out)
}

/// Recursively applies [`finalize_string`] to every string and object key of `value`, and
/// orders every object's keys bytewise (whatever map type serde_json was built with).
pub fn finalize_value(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(finalize_string(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(finalize_value).collect()),
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map
                .into_iter()
                .map(|(k, v)| (finalize_string(&k), finalize_value(v)))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect())
        }
        other => other,
    }
}

/// Serializes a model value as [`finalize_value`] of it would serialize, without building
/// the finalized copy: strings and keys are finalized as they are written, and an object
/// whose keys change is written in the bytewise order of the changed keys.
pub struct Finalized<'a>(pub &'a serde_json::Value);

impl Serialize for Finalized<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        use serde_json::Value;
        match self.0 {
            Value::String(text) => s.serialize_str(&finalized(text)),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Finalized(item))?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut entries: Vec<(std::borrow::Cow<'_, str>, &Value)> =
                    map.iter().map(|(k, v)| (finalized(k), v)).collect();
                if !entries.is_sorted_by(|a, b| a.0 <= b.0) {
                    entries.sort_by(|a, b| a.0.cmp(&b.0));
                }
                let mut out = s.serialize_map(Some(entries.len()))?;
                for (k, v) in &entries {
                    out.serialize_entry(k.as_ref(), &Finalized(v))?;
                }
                out.end()
            }
            other => other.serialize(s),
        }
    }
}

/// Whether `c` is one of the two characters that delimit embedded expressions. Text from
/// users must never hold them (the environment loader refuses them), or it could become an
/// interpolation.
pub fn is_reserved(c: char) -> bool {
    c == OPEN || c == CLOSE
}

/// Whether `s` holds an embedded expression (so it is a template, not a literal).
pub fn is_template(s: &str) -> bool {
    s.contains(OPEN)
}

/// The texts of the expressions embedded in a model string, in order, without `${}`: for
/// `"arn:${aws_iam_role.ci.arn}/x"` (as built in the model), `["aws_iam_role.ci.arn"]`.
/// Lets policy rules follow a reference to the block it names.
pub fn references(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len_utf8()..];
        let Some(end) = after.find(CLOSE) else {
            break;
        };
        out.push(after[..end].to_owned());
        rest = &after[end + CLOSE.len_utf8()..];
    }
    out
}

fn escape_literal(s: &str) -> String {
    s.replace("${", "$${").replace("%{", "%%{")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_reference_renders_as_interpolation() {
        let vpc = Ref::resource("aws_vpc", "main");
        assert_eq!(finalize_string(&vpc.id().to_string()), "${aws_vpc.main.id}");
        let region = Ref::data("aws_region", "current");
        assert_eq!(
            finalize_string(&region.name_attr().to_string()),
            "${data.aws_region.current.name}"
        );
    }

    #[test]
    fn literal_interpolation_syntax_is_escaped() {
        assert_eq!(
            finalize_string("echo ${HOME} %{if x}"),
            "echo $${HOME} %%{if x}"
        );
    }

    #[test]
    fn template_mixes_literals_and_expressions() {
        let bucket = Ref::resource("aws_s3_bucket", "logs");
        let s = format!("{}/${{not_an_expr}}/*", bucket.arn());
        assert!(is_template(&s));
        assert_eq!(
            finalize_string(&s),
            "${aws_s3_bucket.logs.arn}/$${not_an_expr}/*"
        );
    }

    #[test]
    fn references_lists_the_embedded_expressions() {
        let role = Ref::resource("aws_iam_role", "ci");
        let doc = Ref::data("aws_iam_policy_document", "ci_trust");
        let s = format!("{}:{}/${{x}}", role.arn(), doc.attr("json"));
        assert_eq!(
            references(&s),
            [
                "aws_iam_role.ci.arn",
                "data.aws_iam_policy_document.ci_trust.json"
            ]
        );
        assert!(references("arn:aws:iam::1:role/x").is_empty());
    }

    #[test]
    fn object_keys_are_finalized_too() {
        let v = serde_json::json!({"${k}": [Ref::resource("a_b", "c").id()]});
        assert_eq!(
            finalize_value(v),
            serde_json::json!({"$${k}": ["${a_b.c.id}"]})
        );
    }
}
