//! The ConfigMap holding the application's non-secret settings (read with `envFrom`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use super::construct::Ctx;
use super::{K8sError, Object, Rank};

/// Annotation of the ConfigMap naming (comma-separated, sorted) the keys whose change must
/// not ship with a new image; see [`super::ServiceProps::config_apart_from_image`].
pub const APART_FROM_IMAGE: &str = "keel.dev/change-apart-from-image";

/// Name of the ConfigMap for application `name`: `<name>-config`.
pub fn config_map_name(name: &str) -> String {
    format!("{name}-config")
}

/// Checks a ConfigMap/Secret key or environment variable name: `[-._a-zA-Z0-9]+`, not
/// starting with a digit.
pub fn validate_env_name(field: &str, key: &str) -> Result<(), K8sError> {
    let ok = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(K8sError::InvalidProps {
            field: field.to_owned(),
            found: format!("`{key}`"),
            expected: "an environment variable name of letters, digits, '_', '-' and '.', not starting with a digit".to_owned(),
        })
    }
}

/// The ConfigMap, or nothing when there are no settings.
pub(super) fn build(ctx: &Ctx<'_>) -> Result<Option<Object>, K8sError> {
    let config = &ctx.props.config;
    if config.is_empty() {
        return Ok(None);
    }
    for key in config.keys() {
        validate_env_name("config key", key)?;
    }
    let apart = &ctx.props.config_apart_from_image;
    if let Some(key) = apart.iter().find(|k| !config.contains_key(*k)) {
        return Err(K8sError::InvalidProps {
            field: "config_apart_from_image".to_owned(),
            found: format!("`{key}`"),
            expected: "a key of the service's config".to_owned(),
        });
    }
    let mut annotations = BTreeMap::new();
    if !apart.is_empty() {
        let keys: Vec<&str> = apart.iter().map(String::as_str).collect();
        annotations.insert(APART_FROM_IMAGE.to_owned(), keys.join(","));
    }
    let map = ConfigMap {
        metadata: ctx.meta("ConfigMap", &config_map_name(ctx.name()), annotations)?,
        data: Some(config.clone()),
        immutable: Some(false),
        ..Default::default()
    };
    Ok(Some(Object::new(Rank::Config, &map)?))
}
