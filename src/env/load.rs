//! Reading `environments/<env>.yaml`: YAML → JSON Schema → typed struct → semantic checks.
//!
//! Every step reports all the errors it finds, each with the file, the key path, the line
//! and column where the YAML parser knows them, and what was expected.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use saphyr_parser::{Event, Parser};
use serde_json::Value;

use super::Env;
use super::file::{EnvFile, Tier};

/// One problem in one environment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvError {
    /// The file, as given to the loader.
    pub file: PathBuf,
    /// Dotted key path, e.g. `network.az_count` (empty for the whole file).
    pub key: String,
    /// 1-based line and column of the offending value, where known.
    pub position: Option<(usize, usize)>,
    /// What was found and what was expected.
    pub message: String,
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.key, self.message)
        }
    }
}

/// All problems found in one or more environment files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct EnvErrors(pub Vec<EnvError>);

impl fmt::Display for EnvErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "{n} error{} in environment files:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

/// The schema validator, compiled once per process (compiling it costs more than checking
/// a file against it).
fn validator() -> Result<&'static jsonschema::Validator, String> {
    static VALIDATOR: std::sync::OnceLock<Result<jsonschema::Validator, String>> =
        std::sync::OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            // keel's patterns need no look-around: the plain regex engine compiles faster.
            jsonschema::options()
                .with_pattern_options(jsonschema::PatternOptions::regex())
                .build(&schema())
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The JSON Schema of environment files, as `keel schema` prints it.
pub fn schema() -> Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<EnvFile>();
    // A derived schema always serializes: it is plain JSON data.
    strip_null_alternatives(serde_json::to_value(schema).unwrap_or(Value::Null))
}

/// Optional fields are simply not required: `null` is not a value users should write, and
/// without schemars' `anyOf [T, null]` wrapper, errors point inside the struct.
fn strip_null_alternatives(value: Value) -> Value {
    match value {
        Value::Object(mut map) => {
            let replacement = match map.get("anyOf").and_then(Value::as_array) {
                Some(alts)
                    if alts.len() == 2
                        && alts
                            .iter()
                            .any(|a| a == &serde_json::json!({"type": "null"})) =>
                {
                    alts.iter()
                        .find(|a| *a != &serde_json::json!({"type": "null"}))
                        .cloned()
                }
                _ => None,
            };
            if let Some(Value::Object(inner)) = replacement {
                map.remove("anyOf");
                map.extend(inner);
            }
            // Unit enums: `oneOf` of documented `const`s becomes `enum` (errors then list the
            // allowed values), with the variants' docs folded into the description.
            let consts: Option<Vec<(Value, String)>> =
                map.get("oneOf").and_then(Value::as_array).and_then(|alts| {
                    alts.iter()
                        .map(|a| {
                            let c = a.get("const")?.clone();
                            let d = a
                                .get("description")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_owned();
                            Some((c, d))
                        })
                        .collect()
                });
            if let Some(consts) = consts {
                map.remove("oneOf");
                let docs: Vec<String> = consts
                    .iter()
                    .map(|(c, d)| format!("`{}`: {d}", c.as_str().unwrap_or_default()))
                    .collect();
                let description = match map.get("description").and_then(Value::as_str) {
                    Some(d) => format!("{d}\n\n{}", docs.join("\n")),
                    None => docs.join("\n"),
                };
                map.insert("description".into(), Value::String(description));
                map.insert(
                    "enum".into(),
                    Value::Array(consts.into_iter().map(|(c, _)| c).collect()),
                );
            }
            if let Some(Value::Array(types)) = map.get("type") {
                let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                if kept.len() == 1 {
                    map.insert("type".into(), kept[0].clone());
                }
            }
            Value::Object(
                map.into_iter()
                    .map(|(k, v)| (k, strip_null_alternatives(v)))
                    .collect(),
            )
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(strip_null_alternatives).collect())
        }
        other => other,
    }
}

/// Loads and validates one environment file from disk.
pub fn load_file(path: &Path) -> Result<Env, EnvErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        EnvErrors(vec![EnvError {
            file: path.to_owned(),
            key: String::new(),
            position: None,
            message: format!("cannot read the file: {e}"),
        }])
    })?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    load_str(path, stem, &text)
}

/// Validates `text` as the environment file `path` whose expected name is `stem`: YAML,
/// then the JSON Schema, then the typed shape and the semantic checks. Each stage runs only
/// when the one before found nothing.
pub fn load_str(path: &Path, stem: &str, text: &str) -> Result<Env, EnvErrors> {
    let parsed = parse(path, stem, text)?;
    let errors = schema_errors(&parsed);
    if !errors.is_empty() {
        return Err(EnvErrors(errors));
    }
    typed(&parsed)
}

/// An environment file read as YAML, with the position of every node.
#[derive(Debug, Clone)]
pub struct Parsed {
    path: PathBuf,
    stem: String,
    value: Value,
    locations: BTreeMap<String, (usize, usize)>,
}

impl Parsed {
    fn error(&self, pointer: &str, message: String) -> EnvError {
        EnvError {
            file: self.path.clone(),
            key: dotted(pointer),
            position: self.locations.get(pointer).copied(),
            message,
        }
    }
}

/// Reads `text` as YAML (the first stage of [`load_str`]).
pub fn parse(path: &Path, stem: &str, text: &str) -> Result<Parsed, EnvErrors> {
    match serde_saphyr::from_str(text) {
        Ok(value) => Ok(Parsed {
            path: path.to_owned(),
            stem: stem.to_owned(),
            value,
            locations: locate(text),
        }),
        Err(e) => {
            let position = e
                .location()
                .map(|l| (l.line() as usize, l.column() as usize));
            let text = e.to_string();
            let text = first_line(&text);
            // The position is already in front; drop the parser's own copy of it.
            let text = text.strip_prefix("error: ").unwrap_or(text);
            let text = match text.find(": ") {
                Some(i) if text.starts_with("line ") => &text[i + 2..],
                _ => text,
            };
            Err(EnvErrors(vec![EnvError {
                file: path.to_owned(),
                key: String::new(),
                position,
                message: format!("not valid YAML: {text}"),
            }]))
        }
    }
}

/// Every JSON Schema error of a parsed file, in file order (the second stage).
pub fn schema_errors(parsed: &Parsed) -> Vec<EnvError> {
    let validator = match validator() {
        Ok(v) => v,
        Err(e) => return vec![parsed.error("", format!("internal: schema: {e}"))],
    };
    let mut errors: Vec<EnvError> = validator
        .iter_errors(&parsed.value)
        .map(|e| parsed.error(e.instance_path().as_str(), schema_message(&e)))
        .collect();
    errors.sort_by(|a, b| (a.position, &a.key).cmp(&(b.position, &b.key)));
    errors
}

/// The typed environment and its semantic checks (the last stage). Meaningful only for a
/// file without schema errors.
pub fn typed(parsed: &Parsed) -> Result<Env, EnvErrors> {
    let spec: EnvFile = serde_json::from_value(parsed.value.clone())
        .map_err(|e| EnvErrors(vec![parsed.error("", format!("unexpected shape: {e}"))]))?;
    let mut problems = Vec::new();
    super::check::check(&spec, &parsed.stem, &mut problems);
    if !problems.is_empty() {
        let mut errors: Vec<EnvError> = problems
            .into_iter()
            .map(|(pointer, message)| parsed.error(&pointer, message))
            .collect();
        errors.sort_by(|a, b| (a.position, &a.key).cmp(&(b.position, &b.key)));
        return Err(EnvErrors(errors));
    }
    Ok(Env {
        path: parsed.path.clone(),
        spec,
    })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn schema_message(e: &jsonschema::ValidationError<'_>) -> String {
    let full = e.to_string();
    let mut text = first_line(&full).to_owned();
    // Messages start with the offending value; a whole mapping is noise next to its path.
    if (text.starts_with('{') || text.starts_with('['))
        && let Some(i) = text
            .find(" is ")
            .or_else(|| text.find(" has "))
            .or_else(|| text.find(" does "))
    {
        text = format!("the value{}", &text[i..]);
    }
    let text = text.as_str();
    if text.contains("Additional properties are not allowed") {
        format!("{text}; remove the key or check its spelling against environments/schema.json")
    } else if text.contains("is not one of") {
        format!("expected one of the listed values: {text}")
    } else if text.contains("does not match") {
        format!("expected a value matching the schema: {text}")
    } else {
        text.to_owned()
    }
}

/// `/network/az_count` → `network.az_count`; `/a/0/b` → `a[0].b`.
fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if seg.chars().all(|c| c.is_ascii_digit()) && !seg.is_empty() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    out
}

enum Frame {
    Map {
        pointer: String,
        key: Option<String>,
    },
    Seq {
        pointer: String,
        index: usize,
    },
}

/// Maps the JSON pointer of every node of the first document to its 1-based (line, column).
fn locate(text: &str) -> BTreeMap<String, (usize, usize)> {
    let mut out = BTreeMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else { break };
        let pos = (span.start.line(), span.start.col() + 1);
        // The pointer of the node this event starts, if it starts one.
        let node_pointer = |stack: &mut Vec<Frame>| -> Option<String> {
            match stack.last_mut() {
                None => Some(String::new()),
                Some(Frame::Seq { pointer, index }) => {
                    let p = format!("{pointer}/{index}");
                    *index += 1;
                    Some(p)
                }
                Some(Frame::Map { pointer, key }) => key
                    .take()
                    .map(|k| format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1"))),
            }
        };
        match event {
            Event::Scalar(value, ..) => {
                let is_key = matches!(stack.last(), Some(Frame::Map { key: None, .. }));
                if is_key {
                    if let Some(Frame::Map { key, .. }) = stack.last_mut() {
                        *key = Some(value.into_owned());
                    }
                } else if let Some(p) = node_pointer(&mut stack) {
                    out.entry(p).or_insert(pos);
                }
            }
            Event::MappingStart(..) => {
                let p = node_pointer(&mut stack).unwrap_or_default();
                out.entry(p.clone()).or_insert(pos);
                stack.push(Frame::Map {
                    pointer: p,
                    key: None,
                });
            }
            Event::SequenceStart(..) => {
                let p = node_pointer(&mut stack).unwrap_or_default();
                out.entry(p.clone()).or_insert(pos);
                stack.push(Frame::Seq {
                    pointer: p,
                    index: 0,
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            Event::Alias(_) => {
                node_pointer(&mut stack);
            }
            Event::DocumentEnd => break,
            _ => {}
        }
    }
    out
}

/// AZ count of each region keel knows; an unknown region allows up to 3.
pub(crate) fn region_az_count(region: &str) -> u8 {
    match region {
        "us-east-1" => 6,
        "us-west-2" | "ap-northeast-1" | "ap-northeast-2" | "ca-central-1" => 4,
        "us-east-2" | "us-west-1" | "eu-west-1" | "eu-west-2" | "eu-west-3" | "eu-central-1"
        | "eu-north-1" | "eu-south-1" | "ap-southeast-1" | "ap-southeast-2" | "ap-south-1"
        | "sa-east-1" => 3,
        _ => 3,
    }
}

/// Parses a CIDR, requiring the network address (no host bits set).
pub(crate) fn parse_cidr(s: &str) -> Result<Ipv4Net, String> {
    let net: Ipv4Net = s
        .parse()
        .map_err(|_| format!("expected an IPv4 CIDR like 10.0.0.0/16, found {s:?}"))?;
    if net.network() != net.addr() {
        return Err(format!(
            "expected a network address, found {s} (host bits set); did you mean {}?",
            net.trunc()
        ));
    }
    Ok(net)
}

/// Whether the tier requires production policy.
pub(crate) fn is_prod(tier: Tier) -> bool {
    tier == Tier::Prod
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_become_dotted_paths() {
        assert_eq!(dotted("/network/az_count"), "network.az_count");
        assert_eq!(dotted("/a/0/b"), "a[0].b");
        assert_eq!(dotted(""), "");
    }

    #[test]
    fn locate_finds_nested_values() {
        let text = "a: 1\nb:\n  c: x\n  d:\n    - 5\n    - 6\n";
        let map = locate(text);
        assert_eq!(map["/a"], (1, 4));
        assert_eq!(map["/b/c"], (3, 6));
        assert_eq!(map["/b/d/1"], (6, 7));
    }

    #[test]
    fn cidr_with_host_bits_is_rejected() {
        assert!(parse_cidr("10.0.0.0/16").is_ok());
        assert!(
            parse_cidr("10.0.1.0/16")
                .unwrap_err()
                .contains("10.0.0.0/16")
        );
        assert!(parse_cidr("10.0.0.0/33").is_err());
    }
}
