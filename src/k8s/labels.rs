//! Recommended labels (`app.kubernetes.io/*`), selector labels, and the syntax checks for
//! names, label keys and label values.
//!
//! See <https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/>.

use std::collections::BTreeMap;

use super::K8sError;

/// `app.kubernetes.io/name`: the application's name.
pub const NAME: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/instance`: a unique name for this instance of the application.
pub const INSTANCE: &str = "app.kubernetes.io/instance";
/// `app.kubernetes.io/version`: the application's version.
pub const VERSION: &str = "app.kubernetes.io/version";
/// `app.kubernetes.io/component`: the component within the architecture.
pub const COMPONENT: &str = "app.kubernetes.io/component";
/// `app.kubernetes.io/part-of`: the higher-level application this is part of.
pub const PART_OF: &str = "app.kubernetes.io/part-of";
/// `app.kubernetes.io/managed-by`: the tool managing the object; always `keel`.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY`].
pub const KEEL: &str = "keel";
/// `app`: the application's name again ([`NAME`]'s value), the label `kubectl -l app=...`
/// and most runbooks look for. Never in a selector: selectors of existing Deployments are
/// immutable, and the pods carry it anyway.
pub const APP: &str = "app";

/// Who an object belongs to; becomes the recommended labels of every object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppLabels {
    /// `app.kubernetes.io/name`, e.g. `analytics-api`. Never changes (it is in selectors).
    pub name: String,
    /// `app.kubernetes.io/instance`, e.g. `analytics-api-prod`. Never changes (it is in selectors).
    pub instance: String,
    /// `app.kubernetes.io/version`, e.g. `1.0.0`.
    pub version: String,
    /// `app.kubernetes.io/component`, e.g. `api`.
    pub component: String,
    /// `app.kubernetes.io/part-of`, e.g. `llm-observatory`.
    pub part_of: String,
}

impl AppLabels {
    /// All six recommended labels and [`APP`], validated.
    pub fn recommended(&self) -> Result<BTreeMap<String, String>, K8sError> {
        let labels: BTreeMap<String, String> = [
            (NAME, &self.name),
            (INSTANCE, &self.instance),
            (VERSION, &self.version),
            (COMPONENT, &self.component),
            (PART_OF, &self.part_of),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .chain([
            (MANAGED_BY.to_owned(), KEEL.to_owned()),
            (APP.to_owned(), self.name.clone()),
        ])
        .collect();
        validate_labels(&labels)?;
        Ok(labels)
    }

    /// The selector labels: `name` and `instance` only, which never change.
    pub fn selector(&self) -> Result<BTreeMap<String, String>, K8sError> {
        let labels = BTreeMap::from([
            (NAME.to_owned(), self.name.clone()),
            (INSTANCE.to_owned(), self.instance.clone()),
        ]);
        validate_labels(&labels)?;
        Ok(labels)
    }
}

/// Checks every key and value of a label map.
pub fn validate_labels(labels: &BTreeMap<String, String>) -> Result<(), K8sError> {
    for (key, value) in labels {
        validate_key(key)?;
        validate_label_value(key, value)?;
    }
    Ok(())
}

/// Checks a label value: empty, or at most 63 of `[A-Za-z0-9-_.]`, alphanumeric at both ends.
pub fn validate_label_value(key: &str, value: &str) -> Result<(), K8sError> {
    if value.is_empty() || is_qualified_name_part(value) {
        Ok(())
    } else {
        Err(K8sError::InvalidLabelValue {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }
}

/// Checks a label or annotation key: `[prefix/]name`, prefix a DNS-1123 subdomain, name a
/// qualified-name part.
pub fn validate_key(key: &str) -> Result<(), K8sError> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(is_dns_subdomain);
    if prefix_ok && is_qualified_name_part(name) {
        Ok(())
    } else {
        Err(K8sError::InvalidKey {
            key: key.to_owned(),
        })
    }
}

/// Checks a DNS-1123 label (object names of Namespaces, Services, ...): at most 63 of
/// `[a-z0-9-]`, alphanumeric at both ends.
pub fn validate_dns_label(what: &str, value: &str) -> Result<(), K8sError> {
    if is_dns_label(value) {
        Ok(())
    } else {
        Err(K8sError::InvalidName {
            what: what.to_owned(),
            value: value.to_owned(),
            expected: "a DNS-1123 label: 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit".to_owned(),
        })
    }
}

/// Checks a DNS-1123 subdomain (most object names, Secret names): at most 253 characters of
/// dot-separated DNS labels.
pub fn validate_dns_subdomain(what: &str, value: &str) -> Result<(), K8sError> {
    if is_dns_subdomain(value) {
        Ok(())
    } else {
        Err(K8sError::InvalidName {
            what: what.to_owned(),
            value: value.to_owned(),
            expected: "a DNS-1123 subdomain: at most 253 characters, dot-separated lowercase labels of letters, digits and '-'".to_owned(),
        })
    }
}

/// Checks a container port name (IANA service name): 1 to 15 of `[a-z0-9-]`, at least one
/// letter, no leading, trailing or doubled `-`.
pub fn validate_port_name(value: &str) -> Result<(), K8sError> {
    let ok = !value.is_empty()
        && value.len() <= 15
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && value.bytes().any(|b| b.is_ascii_lowercase())
        && !value.starts_with('-')
        && !value.ends_with('-')
        && !value.contains("--");
    if ok {
        Ok(())
    } else {
        Err(K8sError::InvalidName {
            what: "port name".to_owned(),
            value: value.to_owned(),
            expected: "an IANA service name: 1 to 15 lowercase letters, digits and '-', with at least one letter".to_owned(),
        })
    }
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && is_alnum(b[0])
        && is_alnum(b[b.len() - 1])
        && b.iter()
            .all(|&c| is_alnum(c) || c == b'-' || c == b'_' || c == b'.')
}

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> AppLabels {
        AppLabels {
            name: "analytics-api".into(),
            instance: "analytics-api-prod".into(),
            version: "1.0.0".into(),
            component: "api".into(),
            part_of: "llm-observatory".into(),
        }
    }

    #[test]
    fn recommended_has_six_labels_and_app_and_selector_two() {
        let labels = app().recommended().unwrap();
        assert_eq!(labels.len(), 7);
        assert_eq!(labels[MANAGED_BY], "keel");
        assert_eq!(labels[APP], labels[NAME]);
        let selector = app().selector().unwrap();
        assert_eq!(selector.keys().collect::<Vec<_>>(), [INSTANCE, NAME]);
    }

    #[test]
    fn invalid_label_value_names_the_value() {
        let mut a = app();
        a.version = "sha256:abc".into();
        let err = a.recommended().unwrap_err();
        assert!(err.to_string().contains("`sha256:abc`"), "{err}");
        assert!(err.to_string().contains(VERSION), "{err}");
        a.version = "x".repeat(64);
        assert!(a.recommended().is_err());
        a.version = "-1".into();
        assert!(a.recommended().is_err());
        a.version = "on".into();
        assert!(a.recommended().is_ok());
    }

    #[test]
    fn names_and_keys() {
        assert!(validate_dns_label("n", "analytics-api").is_ok());
        assert!(validate_dns_label("n", "").is_err());
        assert!(validate_dns_label("n", "Analytics").is_err());
        assert!(validate_dns_label("n", &"a".repeat(64)).is_err());
        assert!(validate_dns_subdomain("n", "a.b-c").is_ok());
        assert!(validate_key("app.kubernetes.io/name").is_ok());
        assert!(validate_key("Bad Prefix/x").is_err());
        assert!(validate_port_name("metrics").is_ok());
        assert!(validate_port_name("http-metrics-long").is_err());
        assert!(validate_port_name("8080").is_err());
    }
}
