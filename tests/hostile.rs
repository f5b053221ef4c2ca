//! Property tests: hostile environment files and hostile strings.
//!
//! - arbitrary bytes, and mutations of the repository's environment files (deleted and
//!   duplicated lines, swapped types, huge numbers, deep nesting, long strings, odd Unicode,
//!   stray bytes), never panic the loader: they build valid output or are refused with errors
//!   that name the file; through the binary they exit 0 or 2 and a refusal leaves
//!   `generated/` byte for byte as it was;
//! - strings holding `${`, `%{`, quotes and newlines survive the Terraform and Kubernetes
//!   renderers unchanged (as Terraform and kubectl will read them back).
//!
//! Case counts are fixed (override with `PROPTEST_CASES`); the failure is shrunk and printed.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use keel::error::Error;
use keel::ops::Project;
use keel::ops::synth::{Selection, build};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const ENVS: [&str; 3] = ["dev", "staging", "prod"];

fn fixture(env: &str) -> String {
    std::fs::read_to_string(common::repo().join(format!("environments/{env}.yaml")))
        .expect("the repository's environment file")
}

/// `cases` unless `PROPTEST_CASES` says otherwise; no regression files in the tree.
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Values that are the wrong type, out of range, or odd for almost every key.
const VALUES: &[&str] = &[
    "[]",
    "{}",
    "~",
    "null",
    "true",
    "no",
    "on",
    "-1",
    "0",
    "4294967296",
    "18446744073709551616",
    "-9223372036854775809",
    "99999999999999999999999999999999999999",
    "1e400",
    "-1e-400",
    ".nan",
    ".inf",
    "0x1F",
    "0o17",
    "017",
    "1_000",
    "\"${aws_vpc.main.id}\"",
    "\"%{ if true }x%{ endif }\"",
    "'it''s'",
    "\"line\\nbreak \\\" quote\"",
    "\"\\u202E\\u200B\\u00e9\\U0001F600\\U0010FFFF\"",
    "\u{202E}\u{200B}é😀\u{10FFFF}",
    "\"\\0\"",
    "\"\\uF8F0x\\uF8F1\"",
    "&anchor 1",
    "*anchor",
    "*missing",
    "!!binary aGk=",
    "!custom x",
    "!!str 3",
    "|\n  block\n  text",
    ">-\n  folded",
    "\n  - a\n  - b",
    "\n  nested: {deep: [1, {x: y}]}",
    "[1, [2, [3, [4, [5, [6, [7, [8]]]]]]]]",
    "? complex\n: key",
    "{a: 1, a: 2}",
    "<<: {x: 1}",
    "x # comment",
    "\"unterminated",
    "@reserved",
    "`backtick",
    "%directive",
];

/// One edit of an environment file's text.
#[derive(Debug, Clone)]
enum Mutation {
    /// Removes a line (a key, a list item, or a whole block's header).
    DeleteLine(Index),
    /// Repeats a line (a duplicated key or list item).
    DuplicateLine(Index),
    /// Replaces the value after a line's `: ` (or appends one).
    ReplaceValue(Index, &'static str),
    /// A very long scalar.
    LongValue(Index, usize),
    /// Flow nesting `depth` levels deep.
    Nest(Index, usize),
    /// Any byte at any position.
    InsertByte(Index, u8),
    /// Overwrites one byte.
    ReplaceByte(Index, u8),
    /// Cuts the file short.
    Truncate(Index),
    /// Re-indents a line, moving it to another mapping or breaking the structure.
    Indent(Index, usize),
    /// Gives a key the value it has in another environment file (well-formed, and often
    /// valid: this is what reaches the semantic checks and the stacks).
    OtherEnvValue(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
        3 => (any::<Index>(), prop::sample::select(VALUES)).prop_map(|(i, v)| Mutation::ReplaceValue(i, v)),
        1 => (any::<Index>(), 1usize..200_000).prop_map(|(i, n)| Mutation::LongValue(i, n)),
        1 => (any::<Index>(), 1usize..400).prop_map(|(i, n)| Mutation::Nest(i, n)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::InsertByte(i, b)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::ReplaceByte(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), 0usize..9).prop_map(|(i, n)| Mutation::Indent(i, n)),
        4 => (any::<Index>(), any::<Index>()).prop_map(|(i, j)| Mutation::OtherEnvValue(i, j)),
    ]
}

fn apply(text: &[u8], m: &Mutation) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = text.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    let line_of = |i: &Index, lines: &Vec<Vec<u8>>| i.index(lines.len());
    let joined = |lines: Vec<Vec<u8>>| lines.join(&b'\n');
    let value_at = |line: &mut Vec<u8>, value: &[u8]| {
        let cut = line
            .windows(2)
            .position(|w| w == b": ")
            .map_or(line.len(), |p| p + 2);
        line.truncate(cut);
        if cut == line.len() && !line.ends_with(b": ") && !line.ends_with(b"- ") {
            line.extend_from_slice(b": ");
        }
        line.extend_from_slice(value);
    };
    match m {
        Mutation::DeleteLine(i) => {
            let at = line_of(i, &lines);
            lines.remove(at);
            joined(lines)
        }
        Mutation::DuplicateLine(i) => {
            let at = line_of(i, &lines);
            lines.insert(at, lines[at].clone());
            joined(lines)
        }
        Mutation::ReplaceValue(i, v) => {
            let at = line_of(i, &lines);
            value_at(&mut lines[at], v.as_bytes());
            joined(lines)
        }
        Mutation::LongValue(i, n) => {
            let at = line_of(i, &lines);
            value_at(&mut lines[at], "é".repeat(*n / 2).as_bytes());
            joined(lines)
        }
        Mutation::Nest(i, n) => {
            let at = line_of(i, &lines);
            let value = format!("{}1{}", "[".repeat(*n), "]".repeat(*n));
            value_at(&mut lines[at], value.as_bytes());
            joined(lines)
        }
        Mutation::InsertByte(i, b) => {
            let mut out = text.to_vec();
            out.insert(i.index(text.len() + 1), *b);
            out
        }
        Mutation::ReplaceByte(i, b) => {
            let mut out = text.to_vec();
            if !out.is_empty() {
                let at = i.index(out.len());
                out[at] = *b;
            }
            out
        }
        Mutation::Truncate(i) => text[..i.index(text.len() + 1)].to_vec(),
        Mutation::OtherEnvValue(i, j) => {
            let at = line_of(i, &lines);
            let line = String::from_utf8_lossy(&lines[at]).into_owned();
            let Some((key, _)) = line.split_once(": ") else {
                return joined(lines);
            };
            let candidates: Vec<String> = ENVS
                .iter()
                .flat_map(|env| fixture(env).lines().map(str::to_owned).collect::<Vec<_>>())
                .filter_map(|l| {
                    l.strip_prefix(key)
                        .and_then(|rest| rest.strip_prefix(": "))
                        .map(str::to_owned)
                })
                .collect();
            if !candidates.is_empty() {
                let value = &candidates[j.index(candidates.len())];
                value_at(&mut lines[at], value.as_bytes());
            }
            joined(lines)
        }
        Mutation::Indent(i, n) => {
            let at = line_of(i, &lines);
            let trimmed: Vec<u8> = lines[at]
                .iter()
                .copied()
                .skip_while(|&b| b == b' ')
                .collect();
            lines[at] = [vec![b' '; *n], trimmed].concat();
            joined(lines)
        }
    }
}

/// A mutated copy of one of the repository's environment files: (env, bytes, mutations).
fn mutated_env() -> impl Strategy<Value = (&'static str, Vec<u8>, Vec<Mutation>)> {
    (
        prop::sample::select(&ENVS[..]),
        prop::collection::vec(mutation(), 1..4),
    )
        .prop_map(|(env, mutations)| {
            let mut bytes = fixture(env).into_bytes();
            for m in &mutations {
                bytes = apply(&bytes, m);
            }
            (env, bytes, mutations)
        })
}

/// Every rendered file parses as what its extension says.
fn assert_valid_output(files: &BTreeMap<PathBuf, String>) -> Result<(), TestCaseError> {
    for (path, body) in files {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => {
                serde_json::from_str::<serde_json::Value>(body)
                    .map_err(|e| TestCaseError::fail(format!("{}: {e}", path.display())))?;
            }
            Some("yaml" | "yml") => {
                serde_saphyr::from_str::<serde_json::Value>(body)
                    .map_err(|e| TestCaseError::fail(format!("{}: {e}", path.display())))?;
            }
            _ => {}
        }
        prop_assert!(
            body.ends_with('\n'),
            "{} ends with a newline",
            path.display()
        );
    }
    Ok(())
}

/// In process: load, build, render. Either valid output, or user errors naming the file.
fn check_in_process(project: &Project, env: &str) -> Result<(), TestCaseError> {
    let selection = Selection {
        envs: vec![env.to_owned()],
        stack: None,
    };
    let shown = format!("environments/{env}.yaml");
    match build(project, &selection) {
        Ok(outputs) => {
            for o in &outputs {
                assert_valid_output(&o.files)?;
            }
        }
        Err(Error::Env(errors)) => {
            prop_assert!(!errors.0.is_empty());
            for e in &errors.0 {
                prop_assert_eq!(e.file.to_str(), Some(shown.as_str()), "{}", e);
                prop_assert!(!e.message.is_empty());
                prop_assert!(
                    !e.to_string().contains('\n'),
                    "one line: {:?}",
                    e.to_string()
                );
            }
        }
        Err(Error::Stacks(errors)) => {
            // The file was valid; a stack refused what it asks for, naming the environment.
            for e in &errors {
                prop_assert!(
                    e.to_string().contains(&format!("environment {env}")),
                    "{}",
                    e
                );
            }
        }
        Err(other) => {
            return Err(TestCaseError::fail(format!(
                "exit {} is not a user error: {other}",
                other.exit_code()
            )));
        }
    }
    Ok(())
}

#[test]
fn mutated_environment_files_build_or_are_refused_naming_the_file() {
    let project = common::temp_project();
    let root = Project::new(project.path());
    let mut runner = TestRunner::new(config(160));
    runner
        .run(&mutated_env(), |(env, bytes, _)| {
            let file = project.path().join(format!("environments/{env}.yaml"));
            std::fs::write(&file, &bytes).expect("write the mutated file");
            let result = check_in_process(&root, env);
            std::fs::write(&file, fixture(env)).expect("restore the file");
            result
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Bytes drawn mostly from YAML's own punctuation, so more of them get past the parser.
fn yamlish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b": -[]{}#&*!|>'\"\n \t%@`,?\\~0a".to_vec()),
    ];
    prop::collection::vec(byte, 0..400)
}

#[test]
fn arbitrary_bytes_never_panic_the_loader() {
    common::pin_today();
    let mut runner = TestRunner::new(config(512));
    let path = Path::new("environments/prod.yaml");
    runner
        .run(&yamlish_bytes(), |bytes| {
            if let Err(errors) = keel::env::load::load_bytes(path, "prod", &bytes) {
                prop_assert!(!errors.0.is_empty());
                for e in &errors.0 {
                    prop_assert_eq!(&e.file, path);
                    prop_assert!(!e.to_string().contains('\n'), "{:?}", e.to_string());
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

fn keel(root: &Path, args: &[&str]) -> std::process::Output {
    common::keel_command()
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("keel runs")
}

/// Through the binary: exit 0 (and `check` agrees) or exit 2 naming the file, with
/// `generated/` untouched.
#[test]
fn the_binary_exits_0_or_2_and_a_refusal_leaves_generated_untouched() {
    let project = common::temp_project();
    let root = project.path();
    assert!(keel(root, &["synth", "--all"]).status.success());
    let before = keel::render::read_tree(&root.join("generated")).expect("read generated/");
    // The repository's output, put back after an accepted case. Not re-synthesized: synth
    // refuses to shrink a database below what generated/ holds, so after a case that grew
    // one, the restored fixture would be refused.
    let original = tempfile::tempdir().expect("tempdir");
    common::copy_dir(&root.join("generated"), original.path());
    let mut runner = TestRunner::new(config(24));
    runner
        .run(&mutated_env(), |(env, bytes, _)| {
            let file = root.join(format!("environments/{env}.yaml"));
            std::fs::write(&file, &bytes).expect("write the mutated file");
            let out = keel(root, &["synth", "--all"]);
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            let after = keel::render::read_tree(&root.join("generated")).expect("read");
            let check = keel(root, &["check"]);
            std::fs::write(&file, fixture(env)).expect("restore the file");
            match out.status.code() {
                Some(0) => {
                    prop_assert!(
                        check.status.success(),
                        "check after synth: {}",
                        String::from_utf8_lossy(&check.stderr)
                    );
                    // Back to the repository's output for the next case.
                    std::fs::remove_dir_all(root.join("generated")).expect("remove generated/");
                    common::copy_dir(original.path(), &root.join("generated"));
                }
                Some(2) => {
                    prop_assert!(
                        stderr.contains(&format!("environments/{env}.yaml"))
                            || stderr.contains(&format!("environment {env}")),
                        "{}",
                        stderr
                    );
                    prop_assert!(after == before, "a refused synth changed generated/");
                }
                code => {
                    return Err(TestCaseError::fail(format!("exit {code:?}: {stderr}")));
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Text that looks like Terraform templates, YAML syntax and JSON escapes.
fn tricky_string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "${", "%{", "$${", "%%{", "}", "$", "%", "{", "\"", "'", "\n", "\r\n", "\t", "\\",
            ": ", "- ", "#", "&", "*", "!", "|", ">", "---", "...", "on", "yes", "no", "~", "null",
            "0777", "1_000", "1e3", "0x1F", ".inf", "é", "😀", "\u{2028}", " ", "a", "Name",
        ])
        .prop_map(str::to_owned),
        any::<char>()
            .prop_filter("printable", |c| !c.is_control()
                && !keel::refs::is_reserved(*c))
            .prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|p| p.concat())
}

/// Reads a rendered Terraform string the way Terraform's template parser does: `$${` and
/// `%%{` are literal `${` and `%{`; a lone `${` or `%{` would start an interpolation.
fn terraform_literal(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("$${") {
            out.push_str("${");
            rest = r;
        } else if let Some(r) = rest.strip_prefix("%%{") {
            out.push_str("%{");
            rest = r;
        } else if rest.starts_with("${") || rest.starts_with("%{") {
            return Err(format!("{s:?} holds a template sequence"));
        } else {
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Ok(out)
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn literal_strings_survive_terraform_rendering(s in tricky_string()) {
        let rendered = keel::tf::to_pretty_json(serde_json::json!({ s.clone(): s.clone() }));
        let back: serde_json::Value = serde_json::from_str(&rendered).expect("JSON");
        let (key, value) = back.as_object().and_then(|m| m.iter().next()).expect("one entry");
        prop_assert_eq!(terraform_literal(key), Ok(s.clone()));
        prop_assert_eq!(terraform_literal(value.as_str().expect("a string")), Ok(s));
    }

    #[test]
    fn strings_survive_kubernetes_yaml_rendering(k in "[a-z]{1,8}", v in tricky_string(), label in tricky_string()) {
        use k8s_openapi::api::core::v1::ConfigMap;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
        // With v == k the second entry would replace the first: two keys are the point.
        prop_assume!(v != k);
        let map = ConfigMap {
            metadata: ObjectMeta {
                name: Some("tricky".into()),
                annotations: Some(BTreeMap::from([(format!("keel.dev/{k}"), label.clone())])),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(k.clone(), v.clone()), (v.clone(), label.clone())])),
            ..Default::default()
        };
        let object = keel::k8s::Object::new(keel::k8s::Rank::Config, &map).expect("object");
        let files = keel::k8s::render(std::slice::from_ref(&object)).expect("renders");
        let body = files.get("20-configmap-tricky.yaml").expect("the file");
        let back: serde_json::Value = serde_saphyr::from_str(body).expect("YAML");
        prop_assert_eq!(&back, &object.content);
        prop_assert_eq!(back["data"][k.as_str()].as_str(), Some(v.as_str()));
    }
}

/// Tag keys and values from an environment file come out of the provider block as the same
/// literal text, whatever YAML-significant text they hold. (`${`, quotes and newlines are
/// not characters AWS allows in tags, so synth refuses them; the tricky strings keep only
/// the characters AWS allows.)
#[test]
fn tags_from_the_environment_file_round_trip_to_terraform() {
    let project = common::temp_project();
    let root = Project::new(project.path());
    let file = project.path().join("environments/prod.yaml");
    let original = fixture("prod");
    let aws = |s: String| -> String {
        s.chars()
            .filter(|c| keel::env::names::tag_char(*c))
            .collect()
    };
    let tags = prop::collection::btree_map(
        tricky_string()
            .prop_map(aws)
            .prop_filter("a key AWS allows", |k| {
                !k.is_empty()
                    && !k.to_ascii_lowercase().starts_with("aws:")
                    && !["Environment", "Stack", "ManagedBy"].contains(&k.as_str())
            }),
        tricky_string().prop_map(aws),
        1..4,
    );
    let mut runner = TestRunner::new(config(24));
    runner
        .run(&tags, |tags| {
            let mut yaml = String::from("tags:\n");
            for (k, v) in &tags {
                // A JSON string is a YAML double-quoted scalar.
                yaml.push_str(&format!(
                    "  {}: {}\n",
                    serde_json::to_string(k).expect("string"),
                    serde_json::to_string(v).expect("string")
                ));
            }
            yaml.push_str("alerts:");
            std::fs::write(&file, original.replacen("alerts:", &yaml, 1)).expect("write");
            let selection = Selection {
                envs: vec!["prod".into()],
                stack: Some("langgraph-platform".into()),
            };
            let outputs =
                build(&root, &selection).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let main = &outputs[0].files[Path::new("terraform/main.tf.json")];
            let main: serde_json::Value = serde_json::from_str(main).expect("JSON");
            let rendered = main["provider"]["aws"]["default_tags"]["tags"]
                .as_object()
                .expect("tags");
            let mut back = BTreeMap::new();
            for (k, v) in rendered {
                let k = terraform_literal(k).map_err(TestCaseError::fail)?;
                let v =
                    terraform_literal(v.as_str().expect("string")).map_err(TestCaseError::fail)?;
                back.insert(k, v);
            }
            for fixed in ["Environment", "Stack", "ManagedBy"] {
                prop_assert!(back.remove(fixed).is_some());
            }
            let expected: BTreeMap<String, String> = tags
                .into_iter()
                .filter(|(k, _)| !["Environment", "Stack", "ManagedBy"].contains(&k.as_str()))
                .collect();
            prop_assert_eq!(back, expected);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&file, original).expect("restore");
}
