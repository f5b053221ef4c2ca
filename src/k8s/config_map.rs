//! The ConfigMap holding the application's non-secret settings (read with `envFrom`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use super::construct::Ctx;
use super::{K8sError, Object, Rank};

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
    let map = ConfigMap {
        metadata: ctx.meta("ConfigMap", &config_map_name(ctx.name()), BTreeMap::new())?,
        data: Some(config.clone()),
        immutable: Some(false),
        ..Default::default()
    };
    Ok(Some(Object::new(Rank::Config, &map)?))
}
