//! Changes that must not ship in one rollout: a setting marked
//! [`crate::k8s::APART_FROM_IMAGE`] on a ConfigMap, changed together with an image of the
//! same stack. During the rollout the previous image's pods keep serving beside the new ones
//! (and serve alone again after a rollback), and they may not handle the new value, so the
//! value must change in a reviewed change of its own, once every replica runs an image that
//! handles it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::classify::Class;
use super::{Action, Change, Kind, Parsed};
use crate::k8s::APART_FROM_IMAGE;

/// Marks each ConfigMap change of `changes` that changes a key named in its
/// [`APART_FROM_IMAGE`] annotation while a container reading that ConfigMap (`envFrom`)
/// changes its image, as [`Class::Replace`] (the change cannot be applied safely), with
/// the way to apply it.
pub fn flag(changes: &mut [Change], before: &Parsed, after: &Parsed) {
    for c in changes.iter_mut().filter(|c| {
        c.kind == Kind::Kubernetes && c.rtype == "ConfigMap" && c.action == Action::Update
    }) {
        let (Some(old), Some(new)) = (
            before.objects.get(&c.address),
            after.objects.get(&c.address),
        ) else {
            continue;
        };
        let data = |body: &Value, key: &str| body["data"][key].as_str().map(str::to_owned);
        let changed: Vec<String> = new.body["metadata"]["annotations"][APART_FROM_IMAGE]
            .as_str()
            .unwrap_or_default()
            .split(',')
            .filter(|k| !k.is_empty() && data(&old.body, k) != data(&new.body, k))
            .map(|k| {
                let shown = |v: Option<String>| v.unwrap_or_else(|| "(unset)".to_owned());
                format!(
                    "`{k}` {} -> {}",
                    shown(data(&old.body, k)),
                    shown(data(&new.body, k))
                )
            })
            .collect();
        if changed.is_empty() {
            continue;
        }
        let (namespace, name) = (
            &new.body["metadata"]["namespace"],
            &new.body["metadata"]["name"],
        );
        let new_images: Vec<String> = after
            .objects
            .iter()
            .filter(|(_, o)| {
                o.kind == Kind::Kubernetes && &o.body["metadata"]["namespace"] == namespace
            })
            .filter_map(|(address, o)| {
                let was = before.objects.get(address)?;
                let (was, now) = (readers(&was.body, name), readers(&o.body, name));
                let moved: Vec<String> = now
                    .iter()
                    .filter(|(container, image)| was.get(*container).is_some_and(|w| w != *image))
                    .map(|(container, image)| {
                        format!("{address} container {container} now runs {image}")
                    })
                    .collect();
                (!moved.is_empty()).then(|| moved.join(", "))
            })
            .collect();
        if new_images.is_empty() {
            continue;
        }
        c.class = Class::Replace;
        c.reasons.push(format!(
            "{} changes in the same rollout as a new image of its readers ({}): the previous image's pods keep serving beside the new ones during the rollout, and alone after a rollback, and may not handle the new value; ship the image first, then this setting in a change of its own",
            changed.join(", "),
            new_images.join("; ")
        ));
    }
}

/// The containers of `body` (any pod template in it) that read ConfigMap `name` through
/// `envFrom`, by container name, with their images.
fn readers(body: &Value, name: &Value) -> BTreeMap<String, String> {
    fn walk(v: &Value, name: &Value, out: &mut BTreeMap<String, String>) {
        match v {
            Value::Object(m) => {
                let reads = m
                    .get("envFrom")
                    .and_then(Value::as_array)
                    .is_some_and(|from| from.iter().any(|f| &f["configMapRef"]["name"] == name));
                if reads
                    && let (Some(container), Some(image)) = (
                        m.get("name").and_then(Value::as_str),
                        m.get("image").and_then(Value::as_str),
                    )
                {
                    out.insert(container.to_owned(), image.to_owned());
                }
                m.values().for_each(|x| walk(x, name, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, name, out)),
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    walk(body, name, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{Object, Parsed, diff_parsed};
    use super::*;

    /// A stack of one ConfigMap (`MODE` marked, `LEVEL` not) and one Deployment whose app
    /// container reads it and whose init container does not.
    fn stack(mode: &str, level: &str, app: &str, init: &str) -> Parsed {
        let object = |rtype: &str, body: Value| Object {
            kind: Kind::Kubernetes,
            rtype: rtype.to_owned(),
            body,
        };
        let mut p = Parsed::default();
        p.objects.insert(
            "ConfigMap/ns/app-config".into(),
            object(
                "ConfigMap",
                json!({"metadata": {"name": "app-config", "namespace": "ns",
                        "annotations": {APART_FROM_IMAGE: "MODE"}},
                       "data": {"MODE": mode, "LEVEL": level}}),
            ),
        );
        p.objects.insert(
            "Deployment/ns/app".into(),
            object(
                "Deployment",
                json!({"metadata": {"name": "app", "namespace": "ns"},
                       "spec": {"template": {"spec": {
                           "initContainers": [{"name": "fetch", "image": init}],
                           "containers": [{"name": "app", "image": app,
                                           "envFrom": [{"configMapRef": {"name": "app-config"}}]}]}}}}),
            ),
        );
        p
    }

    fn config_map_class(before: &Parsed, after: &Parsed) -> Class {
        let d = diff_parsed("prod", "s", before, after);
        d.changes
            .iter()
            .find(|c| c.rtype == "ConfigMap")
            .map_or(Class::Other, |c| c.class)
    }

    #[test]
    fn only_a_marked_key_with_a_new_image_of_its_reader_is_flagged() {
        let base = stack("a", "1", "app:1", "curl:1");
        // Marked key and the reader's image: flagged.
        let both = stack("b", "1", "app:2", "curl:1");
        assert_eq!(config_map_class(&base, &both), Class::Replace);
        // Marked key alone, or with only a non-reader's image: not flagged.
        assert_eq!(
            config_map_class(&base, &stack("b", "1", "app:1", "curl:1")),
            Class::Other
        );
        assert_eq!(
            config_map_class(&base, &stack("b", "1", "app:1", "curl:2")),
            Class::Other
        );
        // An unmarked key with the reader's image: not flagged.
        assert_eq!(
            config_map_class(&base, &stack("a", "2", "app:2", "curl:1")),
            Class::Other
        );
    }
}
