//! [`Object`]: one rendered Kubernetes object, its ordering [`Rank`], and the shared helpers
//! every builder uses (metadata, checkov suppressions).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::K8sError;
use super::labels;

/// Where an object goes in the apply order; also the two-digit prefix of its file name.
///
/// Namespaces first, then namespace policy, identity (RBAC), configuration, secrets,
/// workloads, and what points at workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rank {
    /// `00`: Namespace.
    Namespace = 0,
    /// `05`: ResourceQuota, LimitRange.
    NamespacePolicy = 5,
    /// `10`: ServiceAccount.
    ServiceAccount = 10,
    /// `15`: Role, RoleBinding and other RBAC.
    Rbac = 15,
    /// `20`: ConfigMap.
    Config = 20,
    /// `30`: ExternalSecret, Secret references.
    Secret = 30,
    /// `40`: Deployment and other workloads.
    Workload = 40,
    /// `50`: Service.
    Service = 50,
    /// `60`: HorizontalPodAutoscaler.
    Autoscaling = 60,
    /// `65`: PodDisruptionBudget.
    Disruption = 65,
    /// `70`: Ingress.
    Ingress = 70,
    /// `80`: NetworkPolicy.
    NetworkPolicy = 80,
    /// `90`: ServiceMonitor and other monitoring resources.
    Monitoring = 90,
}

impl Rank {
    /// The two-digit file prefix, e.g. `40`.
    pub fn prefix(self) -> String {
        format!("{:02}", self as u8)
    }
}

/// One rendered Kubernetes object: what [`super::render`] writes to one file.
///
/// Built only through [`Object::new`] from a typed value (a k8s-openapi struct or one of this
/// module's custom-resource structs), never from hand-written JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// `kind`, e.g. `Deployment`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// Apply order.
    pub rank: Rank,
    /// The object as JSON (keys sorted), including `apiVersion` and `kind`.
    pub content: serde_json::Value,
}

impl Object {
    /// Converts a typed object; fails if it has no `kind` or `metadata.name`.
    pub fn new<T: Serialize>(rank: Rank, typed: &T) -> Result<Self, K8sError> {
        let content = serde_json::to_value(typed).map_err(|e| K8sError::Serialize {
            what: std::any::type_name::<T>().to_owned(),
            message: e.to_string(),
        })?;
        let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        let missing = |field: &str| K8sError::InvalidProps {
            field: field.to_owned(),
            found: "nothing".to_owned(),
            expected: format!("a non-empty {field} on {}", std::any::type_name::<T>()),
        };
        let kind = text(&content["kind"])
            .filter(|k| !k.is_empty())
            .ok_or_else(|| missing("kind"))?;
        let name = text(&content["metadata"]["name"])
            .filter(|n| !n.is_empty())
            .ok_or_else(|| missing("metadata.name"))?;
        let namespace = text(&content["metadata"]["namespace"]);
        Ok(Self {
            kind,
            name,
            namespace,
            rank,
            content,
        })
    }

    /// The file this object is written to, e.g. `40-deployment-analytics-api.yaml`.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}-{}.yaml",
            self.rank.prefix(),
            self.kind.to_ascii_lowercase(),
            self.name
        )
    }
}

/// A checkov check that an object cannot honestly pass, with the reason; rendered as the
/// annotation `checkov.io/skipN: <check>=<reason>` on that object, so the reason is in the
/// stack's code and in the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    /// The kind it applies to, e.g. `Deployment`.
    pub kind: String,
    /// The checkov check id, e.g. `CKV_K8S_35`.
    pub check: String,
    /// Why the check does not apply, in a sentence.
    pub reason: String,
}

impl Suppression {
    /// A suppression of `check` on objects of `kind`, because of `reason`.
    pub fn new(kind: &str, check: &str, reason: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            check: check.to_owned(),
            reason: reason.to_owned(),
        }
    }

    fn validate(&self) -> Result<(), K8sError> {
        let id_ok = ["CKV_K8S_", "CKV2_K8S_"].iter().any(|p| {
            self.check
                .strip_prefix(p)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
        if !id_ok {
            return Err(K8sError::InvalidProps {
                field: "suppression.check".to_owned(),
                found: format!("`{}`", self.check),
                expected: "a checkov kubernetes check id like `CKV_K8S_35`".to_owned(),
            });
        }
        if self.reason.trim().is_empty() || self.reason.contains('\n') {
            return Err(K8sError::InvalidProps {
                field: format!("suppression {} reason", self.check),
                found: format!("{:?}", self.reason),
                expected: "a one-line reason saying why the check does not apply".to_owned(),
            });
        }
        Ok(())
    }
}

/// Builds the metadata every object gets: name, namespace, the recommended labels and the
/// annotations (plus the checkov suppressions for `kind`).
pub fn meta(
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    labels: &BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    suppressions: &[Suppression],
) -> Result<ObjectMeta, K8sError> {
    labels::validate_dns_subdomain(&format!("{kind} name"), name)?;
    if let Some(ns) = namespace {
        labels::validate_dns_label(&format!("{kind} {name} namespace"), ns)?;
    }
    labels::validate_labels(labels)?;
    let mut annotations = annotations;
    let mut n = 0;
    for s in suppressions.iter().filter(|s| s.kind == kind) {
        s.validate()?;
        n += 1;
        annotations.insert(
            format!("checkov.io/skip{n}"),
            format!("{}={}", s.check, s.reason),
        );
    }
    for key in annotations.keys() {
        labels::validate_key(key)?;
    }
    Ok(ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: Some(labels.clone()),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..ObjectMeta::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[test]
    fn object_reads_kind_name_namespace() {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some("app".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let o = Object::new(Rank::Config, &cm).unwrap();
        assert_eq!(
            (o.kind.as_str(), o.name.as_str(), o.namespace.as_deref()),
            ("ConfigMap", "app", Some("ns"))
        );
        assert_eq!(o.content["apiVersion"], "v1");
        assert_eq!(o.file_name(), "20-configmap-app.yaml");
        assert!(Object::new(Rank::Config, &ConfigMap::default()).is_err());
    }

    #[test]
    fn suppressions_become_numbered_annotations() {
        let s = [
            Suppression::new("Deployment", "CKV_K8S_35", "the app reads secrets from env"),
            Suppression::new("Service", "CKV_K8S_1", "other kind"),
        ];
        let m = meta(
            "Deployment",
            "app",
            Some("ns"),
            &BTreeMap::new(),
            BTreeMap::new(),
            &s,
        )
        .unwrap();
        let a = m.annotations.unwrap();
        assert_eq!(
            a["checkov.io/skip1"],
            "CKV_K8S_35=the app reads secrets from env"
        );
        assert_eq!(a.len(), 1);
        let bad = [Suppression::new("Deployment", "K8S_35", "x")];
        assert!(
            meta(
                "Deployment",
                "app",
                None,
                &BTreeMap::new(),
                BTreeMap::new(),
                &bad
            )
            .is_err()
        );
        let empty = [Suppression::new("Deployment", "CKV_K8S_35", " ")];
        assert!(
            meta(
                "Deployment",
                "app",
                None,
                &BTreeMap::new(),
                BTreeMap::new(),
                &empty
            )
            .is_err()
        );
    }
}

/// Checks a resource quantity (`500m`, `512Mi`, `2`, `1.5Gi`) and wraps it.
pub fn quantity(
    field: &str,
    value: &str,
) -> Result<k8s_openapi::apimachinery::pkg::api::resource::Quantity, K8sError> {
    const SUFFIXES: [&str; 14] = [
        "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
    ];
    let digits_end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(digits_end);
    let number_ok = !number.is_empty()
        && number.matches('.').count() <= 1
        && !number.starts_with('.')
        && !number.ends_with('.');
    if number_ok && SUFFIXES.contains(&suffix) {
        Ok(k8s_openapi::apimachinery::pkg::api::resource::Quantity(
            value.to_owned(),
        ))
    } else {
        Err(K8sError::InvalidProps {
            field: field.to_owned(),
            found: format!("`{value}`"),
            expected: "a quantity such as `500m`, `2`, `512Mi` or `1Gi`".to_owned(),
        })
    }
}

#[cfg(test)]
mod quantity_tests {
    #[test]
    fn quantities() {
        for ok in ["500m", "2", "512Mi", "1.5Gi", "1G"] {
            assert!(super::quantity("f", ok).is_ok(), "{ok}");
        }
        for bad in ["", "m", "1.2.3", "5 Mi", "1gb", ".5"] {
            assert!(super::quantity("f", bad).is_err(), "{bad}");
        }
    }
}
