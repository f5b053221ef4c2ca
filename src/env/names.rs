//! The syntax AWS and Kubernetes demand of names that environment files pass through
//! unchanged: resource tags (AWS), label keys and values, taint keys and values
//! (Kubernetes). Checked at synth so a bad one fails with its key path, not at apply.
//!
//! Messages describe the offending character and its position, never echo a whole value.

use super::check::Problems;

/// Longest tag key AWS accepts, in characters.
pub const TAG_KEY_MAX: usize = 128;
/// Longest tag value AWS accepts, in characters.
pub const TAG_VALUE_MAX: usize = 256;
/// Longest label value (and name part of a qualified name) Kubernetes accepts.
pub const LABEL_VALUE_MAX: usize = 63;
/// Longest label key prefix (a DNS subdomain) Kubernetes accepts.
pub const LABEL_PREFIX_MAX: usize = 253;

/// Whether `c` may appear in an AWS tag key or value: a Unicode letter, separator or
/// number, or one of `_ . : / = + - @` (the pattern `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`).
pub fn tag_char(c: char) -> bool {
    // Separators (\p{Z}) are the whitespace characters that are not controls.
    c.is_alphabetic()
        || c.is_numeric()
        || (c.is_whitespace() && !c.is_control())
        || "_.:/=+-@".contains(c)
}

/// The first character of `s` that `ok` refuses, described with its 1-based position.
fn bad_char(s: &str, ok: impl Fn(char) -> bool) -> Option<String> {
    s.chars()
        .enumerate()
        .find(|(_, c)| !ok(*c))
        .map(|(i, c)| format!("{} at character {}", describe(c), i + 1))
}

fn describe(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("U+{:04X}", u32::from(c))
    } else {
        format!("{c:?} (U+{:04X})", u32::from(c))
    }
}

/// Checks AWS tags: key 1..=128 characters, value 0..=256, both of [`tag_char`]s, no key
/// under the reserved `aws:` prefix, none of the keys keel always sets (`reserved`).
pub fn tags<'a>(
    tags: impl IntoIterator<Item = (&'a String, &'a String)>,
    reserved: &[&str],
    ptr: &str,
    out: &mut Problems,
) {
    for (key, value) in tags {
        let at = format!("{ptr}/{}", escape_pointer(key));
        let len = key.chars().count();
        if len == 0 || len > TAG_KEY_MAX {
            out.push((
                at.clone(),
                format!("expected a tag key of 1..={TAG_KEY_MAX} characters, found {len}"),
            ));
        }
        if let Some(bad) = bad_char(key, tag_char) {
            out.push((
                at.clone(),
                format!(
                    "tag key has {bad}; AWS allows letters, numbers, spaces and _ . : / = + - @"
                ),
            ));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            out.push((
                at.clone(),
                "tag keys starting with `aws:` are reserved for AWS; choose another prefix".into(),
            ));
        }
        if reserved.contains(&key.as_str()) {
            out.push((
                at.clone(),
                format!("keel always sets the tag {key:?} itself; remove it from `tags`"),
            ));
        }
        let len = value.chars().count();
        if len > TAG_VALUE_MAX {
            out.push((
                at.clone(),
                format!("expected a tag value of at most {TAG_VALUE_MAX} characters, found {len}"),
            ));
        }
        if let Some(bad) = bad_char(value, tag_char) {
            out.push((
                at,
                format!(
                    "tag value has {bad}; AWS allows letters, numbers, spaces and _ . : / = + - @"
                ),
            ));
        }
    }
}

/// Whether `c` may appear inside a Kubernetes name part or label value.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.".contains(c)
}

/// What is wrong with `s` as a label value (empty, or up to 63 characters of
/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`), if anything.
pub fn label_value_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return None;
    }
    name_part_problem(s, "value")
}

/// The rule shared by label values and the name part of a qualified name.
fn name_part_problem(s: &str, what: &str) -> Option<String> {
    let len = s.chars().count();
    if len > LABEL_VALUE_MAX {
        return Some(format!(
            "expected a {what} of at most {LABEL_VALUE_MAX} characters, found {len}"
        ));
    }
    if let Some(bad) = bad_char(s, name_char) {
        return Some(format!(
            "the {what} has {bad}; expected ASCII letters, digits and - _ ."
        ));
    }
    let ends = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !ends(s.chars().next()) || !ends(s.chars().last()) {
        return Some(format!(
            "the {what} must begin and end with an ASCII letter or digit"
        ));
    }
    None
}

/// What is wrong with `s` as a qualified name (a label or taint key: an optional DNS
/// subdomain prefix and `/`, then a name part of 1..=63 characters), if anything.
pub fn qualified_name_problem(s: &str) -> Option<String> {
    let (prefix, name) = match s.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, s),
    };
    if let Some(prefix) = prefix {
        let dns = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
        let parts_ok = prefix.split('.').all(|p| {
            !p.is_empty() && !p.starts_with('-') && !p.ends_with('-') && p.len() <= LABEL_VALUE_MAX
        });
        if prefix.is_empty()
            || prefix.len() > LABEL_PREFIX_MAX
            || !prefix.chars().all(dns)
            || !parts_ok
        {
            return Some(format!(
                "the key prefix before `/` must be a DNS subdomain (lowercase letters, digits, - and ., at most {LABEL_PREFIX_MAX} characters)"
            ));
        }
    }
    if name.is_empty() {
        return Some("expected a key name of 1..=63 characters, found none".into());
    }
    name_part_problem(name, "key name")
}

/// Checks Kubernetes labels: qualified-name keys, label-value values.
pub fn labels<'a>(
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
    ptr: &str,
    out: &mut Problems,
) {
    for (key, value) in labels {
        let at = format!("{ptr}/{}", escape_pointer(key));
        if let Some(m) = qualified_name_problem(key) {
            out.push((at.clone(), format!("not a Kubernetes label key: {m}")));
        }
        if let Some(m) = label_value_problem(value) {
            out.push((at, format!("not a Kubernetes label value: {m}")));
        }
    }
}

/// A map key as a JSON pointer token (RFC 6901: `~` → `~0`, `/` → `~1`).
pub fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_characters_follow_aws() {
        for ok in ["Team", "cost-center", "a b", "é", "x:y/z=1+2@3_4.5", "日本"] {
            assert!(ok.chars().all(tag_char), "{ok}");
        }
        for bad in ["a*b", "a,b", "a\tb", "a#b", "a$b", "a{b"] {
            assert!(!bad.chars().all(tag_char), "{bad}");
        }
    }

    #[test]
    fn qualified_names_follow_kubernetes() {
        for ok in ["workload", "example.com/tier", "a", "A_b.c-9", "k8s.io/x"] {
            assert_eq!(qualified_name_problem(ok), None, "{ok}");
        }
        let long = "a".repeat(64);
        for bad in [
            "",
            "-a",
            "a-",
            "a b",
            "Example.com/x",
            "/x",
            "a/",
            "a/b/c",
            long.as_str(),
        ] {
            assert!(qualified_name_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn label_values_follow_kubernetes() {
        assert_eq!(label_value_problem(""), None);
        assert_eq!(label_value_problem("general"), None);
        assert!(label_value_problem(&"a".repeat(64)).is_some());
        assert!(label_value_problem("a/b").is_some());
        assert!(label_value_problem("_a").is_some());
    }
}
