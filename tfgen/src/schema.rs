//! The trimmed schemas: one file per provider major under `tfgen/schema/`, holding only the
//! types keel binds and the provider's own configuration (`provider_config`, less
//! [`PROVIDER_LEFT_OUT`]), in the compact format of `../shared/schemas/aws-provider-schema.json`
//! (`"a"` attributes with `"f"` flags and `"t"` cty type, `"b"` nested blocks with `"m"`
//! nesting mode and `"min"`/`"max"`), plus `"doc"` where the provider documents a member.
//!
//! `tfgen schema` rebuilds them: 6.x from the shared compact schema, 5.x by running
//! `terraform providers schema -json` against the local provider mirror.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value, json};

/// The 5.x release keel supports (the lower bound of its provider constraint).
pub const V5: &str = "5.100.0";
/// The 6.x release whose schema keel checks against.
pub const V6: &str = "6.47.0";

/// The key of the provider's own configuration block in a trimmed schema (and in the
/// shared compact one).
pub const PROVIDER_CONFIG: &str = "provider_config";

/// Members of the provider configuration the bindings leave out: `endpoints` (one URL
/// override per AWS service, hundreds of attributes, for API look-alikes and tests) and
/// the static credentials, which a generated file committed to git must never hold
/// (keel's roots take credentials from the environment: OIDC in CI, a profile locally).
pub const PROVIDER_LEFT_OUT: &[&str] = &["endpoints", "access_key", "secret_key", "token"];

/// Where the shared 6.x schema and the provider mirror live on a keel machine.
pub struct Sources {
    /// `../shared/schemas/aws-provider-schema.json` (compact, 6.x).
    pub v6_schema: PathBuf,
    /// The filesystem mirror that holds hashicorp/aws 5.100.0.
    pub mirror: PathBuf,
}

/// `resource` or `data`, and the type name.
pub type TypeName = (String, String);

/// Reads `tfgen/types.txt`: lines `resource aws_x` or `data aws_y`; `#` starts a comment.
pub fn read_types(text: &str) -> Result<BTreeSet<TypeName>, String> {
    let mut out = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        match line.split_whitespace().collect::<Vec<_>>()[..] {
            [kind @ ("resource" | "data"), name] if name.starts_with("aws_") => {
                out.insert((kind.to_owned(), name.to_owned()));
            }
            _ => {
                return Err(format!(
                    "types.txt:{}: expected `resource aws_<name>` or `data aws_<name>`",
                    n + 1
                ));
            }
        }
    }
    Ok(out)
}

/// Writes the type list back, sorted, with its header.
pub fn write_types(types: &BTreeSet<TypeName>) -> String {
    let mut out = String::from(
        "# Terraform types keel binds (tf-aws/src/aws). `cargo run -p keel-tfgen -- schema` adds\n\
         # every type generated/ uses; add a line here to bind one no stack uses yet.\n",
    );
    for (kind, name) in types {
        out.push_str(&format!("{kind} {name}\n"));
    }
    out
}

/// Every `resource` and `data` type named in the `*.tf.json` files under `dir`.
pub fn types_in_generated(dir: &Path) -> Result<BTreeSet<TypeName>, String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("reading {}: {e}", d.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("reading {}: {e}", d.display()))?;
            let path = entry.path();
            let ft = entry
                .file_type()
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() && path.to_string_lossy().ends_with(".tf.json") {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("reading {}: {e}", path.display()))?;
                let doc: Value = serde_json::from_str(&text)
                    .map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
                for kind in ["resource", "data"] {
                    if let Some(types) = doc.get(kind).and_then(Value::as_object) {
                        out.extend(types.keys().map(|t| (kind.to_owned(), t.clone())));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The provider configuration block without [`PROVIDER_LEFT_OUT`].
fn trim_provider(block: &Value) -> Value {
    let mut block = block.clone();
    for key in ["a", "b"] {
        if let Some(members) = block.get_mut(key).and_then(Value::as_object_mut) {
            members.retain(|name, _| !PROVIDER_LEFT_OUT.contains(&name.as_str()));
        }
    }
    block
}

/// The trimmed 6.x schema: the provider configuration and the `types` entries of the
/// shared compact schema.
pub fn trim_v6(full: &Value, types: &BTreeSet<TypeName>) -> Result<Value, String> {
    let mut out = header(V6, "../shared/schemas/aws-provider-schema.json, trimmed");
    let provider = full
        .get(PROVIDER_CONFIG)
        .ok_or_else(|| format!("the hashicorp/aws {V6} schema has no {PROVIDER_CONFIG}"))?;
    out[PROVIDER_CONFIG] = trim_provider(provider);
    for (kind, name) in types {
        let block = full
            .get(kind)
            .and_then(|k| k.get(name))
            .ok_or_else(|| format!("{kind} {name} is not in the hashicorp/aws {V6} schema"))?;
        out[kind][name] = block.clone();
    }
    Ok(out)
}

/// The trimmed 5.x schema, converted from `terraform providers schema -json` output. Where
/// the trimmed 6.x schema `v6` is partial and shows a block as an opaque attribute (the
/// deep members of a WAF rule's `statement`), 5.x's block is cut to the same opaque
/// attribute: the bindings type neither major deeper than both are known.
pub fn trim_v5(
    providers_schema: &Value,
    types: &BTreeSet<TypeName>,
    v6: &Value,
) -> Result<Value, String> {
    let aws = providers_schema
        .get("provider_schemas")
        .and_then(|p| p.get("registry.terraform.io/hashicorp/aws"))
        .ok_or("terraform printed no hashicorp/aws schema")?;
    let mut out = header(
        V5,
        "terraform providers schema -json (local provider mirror), trimmed",
    );
    let provider = aws
        .get("provider")
        .and_then(|p| p.get("block"))
        .ok_or_else(|| format!("terraform printed no hashicorp/aws {V5} provider schema"))?;
    out[PROVIDER_CONFIG] = trim_provider(&compact_block(provider));
    for (kind, name) in types {
        let section = if kind == "resource" {
            "resource_schemas"
        } else {
            "data_source_schemas"
        };
        let block = aws
            .get(section)
            .and_then(|s| s.get(name))
            .and_then(|s| s.get("block"))
            .ok_or_else(|| format!("{kind} {name} is not in the hashicorp/aws {V5} schema"))?;
        let mut compact = compact_block(block);
        if let Some(guide) = v6.get(kind).and_then(|k| k.get(name)) {
            prune_like(&mut compact, guide, false);
        }
        out[kind][name] = compact;
    }
    Ok(out)
}

/// Replaces the nested blocks of `v5` that a partial `v6` block has as opaque attributes
/// by such an attribute, recursively.
fn prune_like(v5: &mut Value, v6: &Value, partial: bool) {
    let partial = partial || v6.get("partial").is_some();
    let Some(blocks) = v5.get_mut("b").and_then(Value::as_object_mut) else {
        return;
    };
    let mut opaque = Vec::new();
    for (name, block) in blocks.iter_mut() {
        if let Some(guide) = v6.get("b").and_then(|b| b.get(name)) {
            prune_like(block, guide, partial);
        } else if partial && let Some(attr) = v6.get("a").and_then(|a| a.get(name)) {
            let mut a = json!({"f": attr.get("f").cloned().unwrap_or(json!("ox")), "t": "dynamic"});
            if let Some(doc) = block.get("doc") {
                a["doc"] = doc.clone();
            }
            opaque.push((name.clone(), a));
        }
    }
    for (name, _) in &opaque {
        blocks.remove(name);
    }
    if !opaque.is_empty() {
        let attrs = v5["a"].as_object_mut();
        match attrs {
            Some(attrs) => attrs.extend(opaque),
            None => v5["a"] = Value::Object(opaque.into_iter().collect()),
        }
    }
}

fn header(version: &str, source: &str) -> Value {
    json!({
        "format": "tfjson-check-schema/1",
        "provider": "hashicorp/aws",
        "provider_version": version,
        "source": source,
        "resource": {},
        "data": {},
    })
}

/// A `providers schema -json` block in the compact format, with `"doc"` descriptions.
fn compact_block(block: &Value) -> Value {
    let mut out = Map::new();
    if let Some(attrs) = block.get("attributes").and_then(Value::as_object) {
        let a: Map<String, Value> = attrs
            .iter()
            .map(|(name, attr)| (name.clone(), compact_attribute(attr)))
            .collect();
        out.insert("a".into(), Value::Object(a));
    }
    if let Some(blocks) = block.get("block_types").and_then(Value::as_object) {
        let b: Map<String, Value> = blocks
            .iter()
            .map(|(name, nested)| {
                let mut nb = match nested.get("block") {
                    Some(inner) => compact_block(inner),
                    None => json!({}),
                };
                nb["m"] = nested.get("nesting_mode").cloned().unwrap_or(json!("list"));
                for (from, to) in [("min_items", "min"), ("max_items", "max")] {
                    if let Some(n) = nested.get(from).and_then(Value::as_u64).filter(|n| *n > 0) {
                        nb[to] = json!(n);
                    }
                }
                (name.clone(), nb)
            })
            .collect();
        out.insert("b".into(), Value::Object(b));
    }
    if block.get("deprecated") == Some(&Value::Bool(true)) {
        out.insert("d".into(), json!(1));
    }
    if let Some(doc) = description(block) {
        out.insert("doc".into(), json!(doc));
    }
    Value::Object(out)
}

fn compact_attribute(attr: &Value) -> Value {
    let flag = |key: &str| attr.get(key) == Some(&Value::Bool(true));
    let mut f = String::new();
    for (key, letter) in [
        ("required", 'r'),
        ("optional", 'o'),
        ("computed", 'c'),
        ("deprecated", 'd'),
        ("sensitive", 's'),
        ("write_only", 'w'),
    ] {
        if flag(key) {
            f.push(letter);
        }
    }
    let mut out = json!({ "f": f });
    match (attr.get("type"), attr.get("nested_type")) {
        (Some(t), _) => out["t"] = t.clone(),
        (None, Some(nested)) => {
            out["n"] = json!({
                "m": nested.get("nesting_mode").cloned().unwrap_or(json!("single")),
                "a": nested
                    .get("attributes")
                    .and_then(Value::as_object)
                    .map(|a| a.iter().map(|(k, v)| (k.clone(), compact_attribute(v))).collect::<Map<_, _>>())
                    .unwrap_or_default(),
            });
        }
        (None, None) => out["t"] = json!("dynamic"),
    }
    if let Some(doc) = description(attr) {
        out["doc"] = json!(doc);
    }
    out
}

fn description(v: &Value) -> Option<String> {
    v.get("description")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
}

/// Runs `terraform providers schema -json` for hashicorp/aws 5.100.0 from `mirror`, in a
/// temporary folder under `scratch` (removed afterwards).
pub fn terraform_v5_schema(mirror: &Path, scratch: &Path) -> Result<Value, String> {
    let dir = scratch.join(format!("keel-tfgen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let result = (|| {
        let rc = dir.join("cli.tfrc");
        let config = format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path = {}\n  }}\n}}\n",
            Value::String(mirror.display().to_string())
        );
        std::fs::write(&rc, config).map_err(|e| format!("writing {}: {e}", rc.display()))?;
        let main = json!({"terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": V5}}}});
        std::fs::write(dir.join("main.tf.json"), main.to_string())
            .map_err(|e| format!("writing {}: {e}", dir.display()))?;
        let run = |args: &[&str]| -> Result<Vec<u8>, String> {
            let out = Command::new("terraform")
                .args(args)
                .current_dir(&dir)
                .env("TF_CLI_CONFIG_FILE", &rc)
                .env("TF_IN_AUTOMATION", "1")
                .output()
                .map_err(|e| format!("running terraform (is it installed?): {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "terraform {} failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            Ok(out.stdout)
        };
        run(&["init", "-input=false", "-backend=false"])?;
        let schema = run(&["providers", "schema", "-json"])?;
        serde_json::from_slice(&schema).map_err(|e| format!("terraform printed no JSON: {e}"))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::{PROVIDER_CONFIG, trim_v6};

    #[test]
    fn the_provider_configuration_is_kept_without_endpoints_and_static_credentials() {
        let full = json!({
            PROVIDER_CONFIG: {"a": {
                "region": {"f": "o", "t": "string"},
                "access_key": {"f": "o", "t": "string"},
                "secret_key": {"f": "o", "t": "string"},
                "token": {"f": "o", "t": "string"},
            }, "b": {
                "endpoints": {"m": "set", "a": {"s3": {"f": "o", "t": "string"}}},
                "default_tags": {"m": "list", "a": {"tags": {"f": "o", "t": ["map", "string"]}}},
            }},
            "resource": {}, "data": {},
        });
        let trimmed = trim_v6(&full, &BTreeSet::new()).unwrap();
        assert_eq!(
            trimmed[PROVIDER_CONFIG],
            json!({"a": {"region": {"f": "o", "t": "string"}}, "b": {
                "default_tags": {"m": "list", "a": {"tags": {"f": "o", "t": ["map", "string"]}}},
            }})
        );
        let err = trim_v6(&json!({"resource": {}}), &BTreeSet::new()).unwrap_err();
        assert!(err.contains("no provider_config"), "{err}");
    }
}
