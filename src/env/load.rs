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

/// The committed `environments/schema.json`: what [`schema`] prints (a test keeps it so),
/// built into the binary because reading it costs a fraction of deriving it again.
pub(crate) const COMMITTED_SCHEMA: &str = include_str!("../../environments/schema.json");

static VALIDATOR: std::sync::OnceLock<Result<jsonschema::Validator, String>> =
    std::sync::OnceLock::new();

/// The schema validator, compiled once per process (compiling it costs more than checking
/// a file against it).
fn validator() -> Result<&'static jsonschema::Validator, String> {
    VALIDATOR
        .get_or_init(|| {
            let schema: Value =
                serde_json::from_str(COMMITTED_SCHEMA).map_err(|e| e.to_string())?;
            // A developer build refuses to check files against a schema that the structs
            // no longer derive (release builds rely on `committed_schema_is_current`).
            #[cfg(debug_assertions)]
            if schema != self::schema() {
                return Err(
                    "environments/schema.json is not what the environment structs \
                            derive: run `cargo run -- schema > environments/schema.json`"
                        .to_owned(),
                );
            }
            // keel's patterns need no look-around: the plain regex engine compiles faster.
            jsonschema::options()
                .with_pattern_options(jsonschema::PatternOptions::regex())
                .build(&schema)
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Starts compiling the schema validator on another thread, so that it overlaps reading
/// and parsing the files; whoever needs the validator first waits for it there.
pub fn prepare_validator() {
    if VALIDATOR.get().is_some() {
        return;
    }
    // Without a thread (none can be spawned), the first file compiles it as before.
    let _ = std::thread::Builder::new().name("schema".into()).spawn(|| {
        let _ = validator();
    });
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

/// The largest environment file keel reads. Real ones are a few kilobytes; the limit keeps
/// a mistaken path (a log, a disk image, `/dev/zero` behind a symlink) from exhausting memory.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// At most this many character errors are listed per file; the rest are counted.
const MAX_CHARACTER_ERRORS: usize = 10;

/// Loads and validates one environment file from disk.
pub fn load_file(path: &Path) -> Result<Env, EnvErrors> {
    let bytes = read_file(path, path)?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    load_bytes(path, stem, &bytes)
}

/// Reads the environment file `file` (named `shown` in messages): only a regular file of at
/// most [`MAX_FILE_BYTES`], never through a symbolic link (a committed link could point at
/// credentials outside the project), so a link, directory, FIFO or device is refused instead
/// of being followed, blocking or filling memory.
pub fn read_file(file: &Path, shown: &Path) -> Result<Vec<u8>, EnvErrors> {
    use crate::inputs::Refused;
    crate::inputs::read_regular(file, MAX_FILE_BYTES).map_err(|refused| {
        let message = match refused {
            Refused::Link => format!("the file {refused}"),
            Refused::TooLarge(_) => format!(
                "the file is larger than {} KiB; expected an environment file of a few kilobytes",
                MAX_FILE_BYTES / 1024
            ),
            Refused::NotRegular | Refused::Io(_) => format!("cannot read the file: {refused}"),
        };
        EnvErrors(vec![EnvError {
            file: shown.to_owned(),
            key: String::new(),
            position: None,
            message,
        }])
    })
}

/// Validates the bytes of the environment file `path`: they must be UTF-8 (a leading byte
/// order mark is allowed) without control characters, then [`load_str`] takes over.
pub fn load_bytes(path: &Path, stem: &str, bytes: &[u8]) -> Result<Env, EnvErrors> {
    load_bytes_with(path, stem, bytes, SchemaCheck::Run)
}

/// Whether the JSON Schema stage runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaCheck {
    /// Check the file against the schema.
    Run,
    /// These exact bytes passed this schema before (see [`super::schema_cache`]): skip it.
    PassedBefore,
}

/// [`load_bytes`], skipping the schema stage for a file known to pass it.
pub fn load_bytes_with(
    path: &Path,
    stem: &str,
    bytes: &[u8],
    schema: SchemaCheck,
) -> Result<Env, EnvErrors> {
    let text = utf8(path, bytes)?;
    load_str_with(path, stem, text, schema)
}

/// `bytes` as text without a leading byte order mark, or an error at every invalid sequence.
fn utf8<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, EnvErrors> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(_) => {
            let mut errors = Vec::new();
            let mut found = 0;
            let mut rest = bytes;
            let mut offset = 0;
            while let Err(e) = std::str::from_utf8(rest) {
                let at = offset + e.valid_up_to();
                let len = e.error_len().unwrap_or(rest.len() - e.valid_up_to());
                found += 1;
                if errors.len() < MAX_CHARACTER_ERRORS {
                    let shown: Vec<String> = bytes[at..at + len]
                        .iter()
                        .map(|b| format!("0x{b:02X}"))
                        .collect();
                    errors.push(EnvError {
                        file: path.to_owned(),
                        key: String::new(),
                        position: Some(line_column(bytes, at)),
                        message: format!(
                            "not valid UTF-8: {} {}; save the file as UTF-8",
                            if len == 1 { "byte" } else { "byte sequence" },
                            shown.join(" ")
                        ),
                    });
                }
                offset = at + len;
                rest = &bytes[offset..];
            }
            push_more(&mut errors, path, found);
            Err(EnvErrors(errors))
        }
    }
}

/// Whether YAML files may hold `c` as written. YAML's printable set, less NEL (a line break
/// in YAML 1.1 only, so lines would be counted differently), a byte order mark after the
/// start, and the two private-use characters keel reserves for Terraform expressions
/// (`refs.rs`): text holding them could otherwise turn into an interpolation.
pub fn allowed_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='~')
        || (c >= '\u{A0}'
            && !matches!(c, '\u{FEFF}' | '\u{FFFE}' | '\u{FFFF}')
            && !crate::refs::is_reserved(c))
}

/// An error at every character a YAML file must not hold (see [`allowed_char`]).
fn character_errors(path: &Path, text: &str) -> Vec<EnvError> {
    let mut errors = Vec::new();
    let mut found = 0;
    let (mut line, mut column) = (1, 1);
    for c in text.chars() {
        if !allowed_char(c) {
            found += 1;
            if errors.len() < MAX_CHARACTER_ERRORS {
                errors.push(EnvError {
                    file: path.to_owned(),
                    key: String::new(),
                    position: Some((line, column)),
                    message: format!(
                        "{} is not allowed in an environment file; remove it (only tab, \
                         line feed and carriage return may appear among control characters)",
                        describe(c)
                    ),
                });
            }
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    push_more(&mut errors, path, found);
    errors
}

fn describe(c: char) -> String {
    let name = match c {
        '\0' => " (NUL)",
        '\u{7F}' => " (DEL)",
        '\u{85}' => " (NEL)",
        '\u{FEFF}' => " (byte order mark)",
        '\u{0}'..='\u{1F}' | '\u{80}'..='\u{9F}' => " (a control character)",
        c if crate::refs::is_reserved(c) => " (reserved by keel for Terraform expressions)",
        _ => "",
    };
    format!("character U+{:04X}{name}", u32::from(c))
}

/// Replaces the errors past [`MAX_CHARACTER_ERRORS`] with one line that counts them.
fn push_more(errors: &mut Vec<EnvError>, path: &Path, found: usize) {
    if found > errors.len() {
        errors.push(EnvError {
            file: path.to_owned(),
            key: String::new(),
            position: None,
            message: format!("{} more like these", found - errors.len()),
        });
    }
}

/// 1-based line and column (in characters) of byte `at` of `bytes`.
fn line_column(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    // Bytes before `at` on this line; count characters the way `from_utf8_lossy` sees them.
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Validates `text` as the environment file `path` whose expected name is `stem`: allowed
/// characters, YAML, then the JSON Schema, then the typed shape and the semantic checks. Each
/// stage runs only when the one before found nothing.
pub fn load_str(path: &Path, stem: &str, text: &str) -> Result<Env, EnvErrors> {
    load_str_with(path, stem, text, SchemaCheck::Run)
}

/// [`load_str`], skipping the schema stage for a file known to pass it.
pub fn load_str_with(
    path: &Path,
    stem: &str,
    text: &str,
    schema: SchemaCheck,
) -> Result<Env, EnvErrors> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let errors = character_errors(path, text);
    if !errors.is_empty() {
        return Err(EnvErrors(errors));
    }
    let parsed = parse(path, stem, text)?;
    let mut errors = decoded_character_errors(&parsed);
    if schema == SchemaCheck::Run {
        errors.extend(schema_errors(&parsed));
    }
    errors.sort_by(|a, b| (a.position, &a.key).cmp(&(b.position, &b.key)));
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
    /// The YAML text, read again for positions only when there is an error to place.
    text: String,
    locations: std::sync::OnceLock<BTreeMap<String, (usize, usize)>>,
}

impl Parsed {
    /// An error at `pointer`, placed where it is written or, for a key that is absent, at
    /// its nearest present parent (so every error has a line and column).
    pub(crate) fn error(&self, pointer: &str, message: String) -> EnvError {
        let locations = self.locations.get_or_init(|| locate(&self.text));
        let mut at = pointer;
        let position = loop {
            if let Some(p) = locations.get(at) {
                break Some(*p);
            }
            match at.rfind('/') {
                Some(i) => at = &at[..i],
                None => break None,
            }
        };
        EnvError {
            file: self.path.clone(),
            key: dotted(pointer),
            position,
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
            text: text.to_owned(),
            locations: std::sync::OnceLock::new(),
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
                message: format!("not valid YAML: {}", yaml_message(text)),
            }]))
        }
    }
}

/// The YAML parser's message in the user's terms where it speaks of its own API.
fn yaml_message(text: &str) -> String {
    if text.starts_with("multiple YAML documents") {
        "expected one YAML document, found a second one (a `---` line); keep one environment per file".into()
    } else if let Some(key) = text.strip_prefix("duplicate mapping key: ") {
        let key = key.split(", set DuplicateKeyPolicy").next().unwrap_or(key);
        format!("duplicate key `{key}`; a key may appear only once in a mapping")
    } else if let Some(what) = text.strip_prefix("budget breached: ") {
        let what = what.split(" at line").next().unwrap_or(what);
        // `Nodes { nodes: 250001 }` → `nodes: 250001`.
        let what = match (what.find('{'), what.rfind('}')) {
            (Some(a), Some(b)) if a < b => what[a + 1..b].trim(),
            _ => what,
        };
        format!(
            "the document is beyond the parser's limits ({what}); environment files are small, \
             a few levels deep, and need no aliases that expand"
        )
    } else if text.starts_with("recursion limit exceeded") {
        "nested too deeply; environment files are a few levels deep".into()
    } else {
        text.to_owned()
    }
}

/// An error for every string (key or value) that YAML escapes (`"\0"`, `"\uF8F0"`) made hold
/// a character that [`character_errors`] refuses in the raw text.
fn decoded_character_errors(parsed: &Parsed) -> Vec<EnvError> {
    fn walk(value: &Value, pointer: &mut String, parsed: &Parsed, out: &mut Vec<EnvError>) {
        let check = |s: &str, pointer: &str, what: &str, out: &mut Vec<EnvError>| {
            if let Some(c) = s.chars().find(|&c| !allowed_char(c)) {
                out.push(parsed.error(
                    pointer,
                    format!(
                        "{what} holds {}, which is not allowed; remove the escape sequence",
                        describe(c)
                    ),
                ));
            }
        };
        match value {
            Value::String(s) => check(s, pointer, "the value", out),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = pointer.len();
                    pointer.push_str(&format!("/{i}"));
                    walk(item, pointer, parsed, out);
                    pointer.truncate(len);
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                    check(k, pointer, "the key", out);
                    walk(v, pointer, parsed, out);
                    pointer.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&parsed.value, &mut String::new(), parsed, &mut out);
    out
}

/// Every JSON Schema error of a parsed file, in file order (the second stage).
pub fn schema_errors(parsed: &Parsed) -> Vec<EnvError> {
    let validator = match validator() {
        Ok(v) => v,
        Err(e) => return vec![parsed.error("", format!("internal: schema: {e}"))],
    };
    // Checking is cheaper than collecting; errors are collected only when there are some.
    if validator.is_valid(&parsed.value) {
        return Vec::new();
    }
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
    // The path of a failure places it at its key (an out-of-range number passes the schema).
    let spec = serde_path_to_error::deserialize::<_, EnvFile>(&parsed.value).map_err(|e| {
        let pointer: String = e
            .path()
            .iter()
            .map(|segment| {
                use serde_path_to_error::Segment;
                match segment {
                    Segment::Seq { index } => format!("/{index}"),
                    Segment::Map { key } | Segment::Enum { variant: key } => {
                        format!("/{}", key.replace('~', "~0").replace('/', "~1"))
                    }
                    Segment::Unknown => String::new(),
                }
            })
            .collect();
        EnvErrors(vec![
            parsed.error(&pointer, serde_message(&e.inner().to_string())),
        ])
    })?;
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

/// What the schema expected at the error's key, in YAML's words. The offending value is
/// never quoted: a file can hold anything (a credentials file behind a link, a token pasted
/// in the wrong place), and errors go to CI logs. Only its type is named, and for a number
/// its value (a number is no secret, and `9` next to `at most 6` says what to fix).
fn schema_message(e: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::{TypeKind, ValidationErrorKind as Kind};
    let found = found(e.instance());
    let number = e.instance().as_number().map(ToString::to_string);
    let list = |values: &Value| match values {
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    let bound = |what: &str, limit: &dyn fmt::Display| match &number {
        Some(n) => format!("expected {what} {limit}, found {n}"),
        None => format!("expected {what} {limit}, found {found}"),
    };
    match e.kind() {
        Kind::Type { kind } => {
            let expected: Vec<&str> = match kind {
                TypeKind::Single(t) => vec![type_name(*t)],
                TypeKind::Multiple(set) => set.iter().map(type_name).collect(),
            };
            format!("expected {}, found {found}", expected.join(" or "))
        }
        Kind::AdditionalProperties { unexpected } => format!(
            "unexpected key{} {}; remove the key or check its spelling against environments/schema.json",
            if unexpected.len() == 1 { "" } else { "s" },
            unexpected
                .iter()
                .map(|k| format!(
                    "`{}`",
                    dotted(&format!("/{}", k.replace('~', "~0").replace('/', "~1")))
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Kind::Required { property } => format!(
            "missing key `{}`; add it (see environments/schema.json)",
            property.as_str().unwrap_or_default()
        ),
        Kind::Enum { options } => {
            let strings = options
                .as_array()
                .is_some_and(|o| o.iter().all(Value::is_string));
            if strings && !e.instance().is_string() {
                format!(
                    "expected one of {} (strings: quote the value), found {found}",
                    list(options)
                )
            } else {
                format!(
                    "expected one of {}, found another {}",
                    list(options),
                    found_noun(e.instance())
                )
            }
        }
        Kind::Constant { expected_value } => format!(
            "expected {expected_value}, found another {}",
            found_noun(e.instance())
        ),
        Kind::Pattern { pattern } => format!("expected a string matching {pattern}"),
        Kind::Format { format } => format!("expected a {format}"),
        Kind::Minimum { limit } => bound("at least", limit),
        Kind::Maximum { limit } => bound("at most", limit),
        Kind::ExclusiveMinimum { limit } => bound("more than", limit),
        Kind::ExclusiveMaximum { limit } => bound("less than", limit),
        Kind::MinLength { limit } => format!("expected at least {limit} characters"),
        Kind::MaxLength { limit } => format!("expected at most {limit} characters"),
        Kind::MinItems { limit } => format!("expected at least {limit} items"),
        Kind::MaxItems { limit } => format!("expected at most {limit} items"),
        Kind::MinProperties { limit } => format!("expected at least {limit} keys"),
        Kind::MaxProperties { limit } => format!("expected at most {limit} keys"),
        Kind::UniqueItems => "expected every item once, found a repeated one".into(),
        Kind::OneOfNotValid { context } | Kind::AnyOf { context } => {
            // What each form expected, e.g. "expected an integer, found a string; or
            // expected one of 8.0, 8.4, found another string".
            let forms: Vec<String> = context
                .iter()
                .filter_map(|errors| {
                    let first = errors.first()?;
                    Some(schema_message(first))
                })
                .collect();
            if forms.is_empty() || forms.len() != context.len() {
                format!(
                    "found {found}, which matches none of the forms the schema allows here (see environments/schema.json)"
                )
            } else {
                format!(
                    "matches none of the forms the schema allows here: {}",
                    forms.join("; or ")
                )
            }
        }
        Kind::OneOfMultipleValid { .. } => format!(
            "found {found}, which matches more than one of the forms the schema allows here (see environments/schema.json)"
        ),
        other => format!(
            "does not satisfy the schema's `{}` rule (see environments/schema.json)",
            other.keyword()
        ),
    }
}

/// A JSON Schema type in YAML's words.
fn type_name(t: jsonschema::JsonType) -> &'static str {
    use jsonschema::JsonType as T;
    match t {
        T::Null => "null",
        T::Boolean => "true or false",
        T::Integer => "an integer",
        T::Number => "a number",
        T::String => "a string",
        T::Array => "a list",
        T::Object => "a mapping",
    }
}

/// What a value is, never what it holds.
fn found(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(n) if n.is_f64() => "a number with a fraction or exponent",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// [`found`] without its article.
fn found_noun(value: &Value) -> &'static str {
    let f = found(value);
    f.strip_prefix("an ")
        .or_else(|| f.strip_prefix("a "))
        .unwrap_or(f)
}

/// A serde message about a value of the typed stage, without the value: serde quotes it
/// (``invalid type: string "…", expected u32``).
fn serde_message(text: &str) -> String {
    // "<what> <value>, expected <expected>": keep the kind of value, drop the value.
    let kind_only = |what: &str| -> String {
        what.split(['`', '"', '\''])
            .next()
            .unwrap_or(what)
            .trim()
            .to_owned()
    };
    let split = |rest: &str| -> Option<(String, String)> {
        let (what, expected) = rest.rsplit_once(", expected ")?;
        Some((kind_only(what), expected.to_owned()))
    };
    if let Some((what, expected)) = text.strip_prefix("invalid type: ").and_then(split) {
        format!("expected {expected}, found {what}")
    } else if let Some((what, expected)) = text.strip_prefix("invalid value: ").and_then(split) {
        format!("expected {expected}, found another {what}")
    } else if let Some((_, expected)) = text.strip_prefix("unknown variant ").and_then(split) {
        format!("expected {expected}, found another value")
    } else if text.starts_with("unknown field ")
        || text.starts_with("missing field ")
        || text.starts_with("invalid length ")
    {
        // A key name or a count, no value.
        text.to_owned()
    } else {
        "does not have the expected shape (see environments/schema.json)".to_owned()
    }
}

/// `/network/az_count` → `network.az_count`; `/a/0/b` → `a[0].b`.
fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        // Keys may hold any printable character; escape the rest so messages stay one line.
        let seg: String = seg
            .replace("~1", "/")
            .replace("~0", "~")
            .chars()
            .flat_map(|c| {
                let escaped: Vec<char> = if c.is_control() {
                    c.escape_default().collect()
                } else {
                    vec![c]
                };
                escaped
            })
            .collect();
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
pub(crate) fn locate(text: &str) -> BTreeMap<String, (usize, usize)> {
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
    // The value is not repeated: whatever it holds, it is no CIDR.
    let net: Ipv4Net = s
        .parse()
        .map_err(|_| "expected an IPv4 CIDR like 10.0.0.0/16".to_owned())?;
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
    fn an_absent_key_is_placed_at_its_parent() {
        let parsed = parse(Path::new("e.yaml"), "e", "# c\na: 1\nb:\n  c: x\n").unwrap();
        assert_eq!(parsed.error("/b/d/e", "m".into()).position, Some((4, 3)));
        assert_eq!(parsed.error("/z", "m".into()).position, Some((2, 1)));
    }

    #[test]
    fn serde_messages_lose_the_value() {
        assert_eq!(
            serde_message("invalid type: string \"ghp_x\", expected u32"),
            "expected u32, found string"
        );
        assert_eq!(
            serde_message("invalid value: integer `99999999999`, expected u32"),
            "expected u32, found another integer"
        );
        assert_eq!(
            serde_message("unknown variant `ghp_x`, expected `a` or `b`"),
            "expected `a` or `b`, found another value"
        );
        assert!(!serde_message("something custom: ghp_x").contains("ghp_x"));
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
