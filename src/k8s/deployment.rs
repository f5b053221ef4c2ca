//! The Deployment: image pinning, ports, probes, resources, rollout strategy, topology
//! spread and the restricted security context.
//!
//! See <https://kubernetes.io/docs/concepts/workloads/controllers/deployment/> and
//! <https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted>.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapEnvSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvFromSource, EnvVar, EnvVarSource, HTTPGetAction, Lifecycle, LifecycleHandler,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecurityContext, SleepAction, TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::construct::Ctx;
use super::{K8sError, Object, Rank, quantity};

/// Name of the container port (and Service port) serving the application: `http`.
pub const HTTP_PORT_NAME: &str = "http";
/// Name of the container port (and Service port) serving Prometheus metrics: `metrics`.
pub const METRICS_PORT_NAME: &str = "metrics";

/// A container image, pinned by tag or by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    /// `repo:tag`, e.g. `ghcr.io/acme/analytics-api:1.0.0`. Fine in dev; `latest` is refused.
    Tag {
        /// Repository, e.g. `ghcr.io/acme/analytics-api`.
        repo: String,
        /// Tag, e.g. `1.0.0`.
        tag: String,
    },
    /// `repo@sha256:<hex>`: immutable, required in prod.
    Digest {
        /// Repository, e.g. `ghcr.io/acme/analytics-api`.
        repo: String,
        /// Digest, `sha256:` and 64 lowercase hex digits.
        digest: String,
    },
}

impl Image {
    /// The reference as the container spec takes it.
    pub fn reference(&self) -> String {
        match self {
            Self::Tag { repo, tag } => format!("{repo}:{tag}"),
            Self::Digest { repo, digest } => format!("{repo}@{digest}"),
        }
    }

    /// Fails unless the image is pinned by digest (stacks call this for prod).
    /// The image an environment file pins: by digest when it gives one, else by tag.
    pub fn from_pin(pin: &crate::env::file::Image) -> Result<Image, String> {
        match (&pin.tag, &pin.digest) {
            (_, Some(d)) => Ok(Image::Digest {
                repo: pin.repository.clone(),
                digest: d.clone(),
            }),
            (Some(t), None) => Ok(Image::Tag {
                repo: pin.repository.clone(),
                tag: t.clone(),
            }),
            (None, None) => Err("the image has neither tag nor digest".into()),
        }
    }

    /// [`Image::from_pin`], refusing a tag where the tier requires a digest (`digest_required`).
    pub fn pinned(pin: &crate::env::file::Image, digest_required: bool) -> Result<Image, String> {
        let image = Image::from_pin(pin)?;
        if digest_required {
            image.require_digest().map_err(|e| e.to_string())?;
        }
        Ok(image)
    }

    /// `app.kubernetes.io/version` of a pin: the tag, or `sha256-` and the digest's first 12
    /// hex digits.
    pub fn version_label(pin: &crate::env::file::Image) -> String {
        match (&pin.tag, &pin.digest) {
            (Some(t), None) => t.clone(),
            (_, Some(d)) => format!(
                "sha256-{}",
                d.trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect::<String>()
            ),
            (None, None) => "unknown".into(),
        }
    }

    /// Fails unless pinned by digest.
    pub fn require_digest(&self) -> Result<(), K8sError> {
        match self {
            Self::Digest { .. } => Ok(()),
            Self::Tag { .. } => Err(K8sError::DigestRequired {
                image: self.reference(),
            }),
        }
    }

    /// Checks repository, tag and digest syntax.
    pub fn validate(&self) -> Result<(), K8sError> {
        let bad = |found: String, expected: &str| {
            Err(K8sError::InvalidProps {
                field: "image".to_owned(),
                found,
                expected: expected.to_owned(),
            })
        };
        let repo = match self {
            Self::Tag { repo, .. } | Self::Digest { repo, .. } => repo,
        };
        let repo_ok = !repo.is_empty()
            && !repo.contains(['@', ' '])
            && !repo.rsplit('/').next().unwrap_or("").contains(':')
            && repo
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b));
        if !repo_ok {
            return bad(
                format!("repository `{repo}`"),
                "a lowercase repository such as `ghcr.io/acme/app`, without tag or digest",
            );
        }
        match self {
            Self::Tag { tag, .. } => {
                let tag_ok = !tag.is_empty()
                    && tag.len() <= 128
                    && !tag.starts_with(['.', '-'])
                    && tag
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
                if !tag_ok || tag == "latest" {
                    return bad(
                        format!("tag `{tag}`"),
                        "a fixed tag such as `1.0.0` (not `latest`)",
                    );
                }
            }
            Self::Digest { digest, .. } => {
                let hex = digest.strip_prefix("sha256:").unwrap_or("");
                if hex.len() != 64
                    || !hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return bad(
                        format!("digest `{digest}`"),
                        "`sha256:` followed by 64 lowercase hex digits",
                    );
                }
            }
        }
        Ok(())
    }
}

/// The application's ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// Container port serving HTTP (named `http`). Default: `8080`.
    pub http: u16,
    /// Service port forwarding to `http`. Default: `80`.
    pub service_http: u16,
    /// Container and Service port serving Prometheus metrics (named `metrics`); `None` for
    /// an app without one (monitoring then scrapes the `http` port). Default: `Some(9091)`.
    pub metrics: Option<u16>,
}

impl Default for Ports {
    fn default() -> Self {
        Self {
            http: 8080,
            service_http: 80,
            metrics: Some(9091),
        }
    }
}

/// HTTP GET probes on the `http` port.
///
/// See <https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/>.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probes {
    /// Startup probe path. Default: `/health`.
    pub startup_path: String,
    /// Liveness probe path. Default: `/health`.
    pub liveness_path: String,
    /// Readiness probe path. Default: `/health`.
    pub readiness_path: String,
    /// Startup probe failures (10 s apart) before the container is restarted. Default: `30`.
    pub startup_failure_threshold: i32,
}

impl Default for Probes {
    fn default() -> Self {
        Self {
            startup_path: "/health".into(),
            liveness_path: "/health".into(),
            readiness_path: "/health".into(),
            startup_failure_threshold: 30,
        }
    }
}

/// Container requests and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    /// CPU request. Default: `500m`.
    pub requests_cpu: String,
    /// Memory request. Default: `512Mi`.
    pub requests_memory: String,
    /// CPU limit. Default: `1`.
    pub limits_cpu: String,
    /// Memory limit. Default: `1Gi`.
    pub limits_memory: String,
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            requests_cpu: "500m".into(),
            requests_memory: "512Mi".into(),
            limits_cpu: "1".into(),
            limits_memory: "1Gi".into(),
        }
    }
}

/// Whose account the container's user id is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserOwner {
    /// A high uid keel picks (at least 10000, so it collides with no host user); the image
    /// must not depend on its user.
    Keel,
    /// The image's own non-root account, which owns what the image prepared (e.g. the
    /// `nginx` account of nginx:alpine, uid 101): any non-zero uid. The workload carries
    /// checkov's high-UID check (`CKV_K8S_40`) suppressed with the account named.
    Image {
        /// The account's name in the image, e.g. `nginx`.
        account: String,
    },
}

/// A writable directory on the read-only root: an emptyDir mounted at `path`, its volume
/// named after the path (`/var/cache/nginx` → `var-cache-nginx`).
///
/// See <https://kubernetes.io/docs/concepts/storage/volumes/#emptydir>.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritableDir {
    /// Absolute mount path, e.g. `/var/cache/nginx`.
    pub path: String,
    /// Most the directory may hold before the pod is evicted, e.g. `256Mi`.
    pub size_limit: String,
}

impl WritableDir {
    /// `path`, holding at most `size_limit`.
    pub fn new(path: &str, size_limit: &str) -> Self {
        Self {
            path: path.to_owned(),
            size_limit: size_limit.to_owned(),
        }
    }

    /// The volume's name: the path's segments joined by `-`, `.` and `_` as `-`.
    pub fn volume_name(&self) -> String {
        self.path
            .trim_start_matches('/')
            .replace(['/', '.', '_'], "-")
    }

    /// Checks the path (absolute, lowercase, no `..`, not `/`) and the size; `field`
    /// names the setting in errors.
    fn validate(&self, field: &str) -> Result<(), K8sError> {
        let path_ok = self.path.starts_with('/')
            && self.path.len() > 1
            && !self.path.ends_with('/')
            && !self.path.split('/').any(|s| s == ".." || s == ".")
            && !self.path.contains("//");
        if !path_ok || super::labels::validate_dns_label(field, &self.volume_name()).is_err() {
            return Err(K8sError::InvalidProps {
                field: field.to_owned(),
                found: format!("path `{}`", self.path),
                expected:
                    "an absolute directory such as `/var/cache/nginx` (lowercase, no `..`, not `/`)"
                        .to_owned(),
            });
        }
        super::quantity(&format!("{field}.size_limit"), &self.size_limit)?;
        Ok(())
    }
}

/// Who the container runs as, and where it may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSecurity {
    /// User id: at least 10000 when keel picks it, the image's uid (non-zero) when
    /// [`PodSecurity::user_owner`] is the image. Default: `10001`.
    pub run_as_user: i64,
    /// Group id, non-zero (also the pod's `fsGroup`). Default: `10001`.
    pub run_as_group: i64,
    /// Whose account the uid is. Default: [`UserOwner::Keel`].
    pub user_owner: UserOwner,
    /// Mount the root filesystem read-only. Default: `true`.
    pub read_only_root_filesystem: bool,
    /// The directories the image writes, each an emptyDir of bounded size.
    /// Default: `/tmp`, 256Mi.
    pub writable_dirs: Vec<WritableDir>,
}

impl Default for PodSecurity {
    fn default() -> Self {
        Self {
            run_as_user: 10001,
            run_as_group: 10001,
            user_owner: UserOwner::Keel,
            read_only_root_filesystem: true,
            writable_dirs: vec![WritableDir::new("/tmp", "256Mi")],
        }
    }
}

impl PodSecurity {
    /// Runs as the image's own `account` (`uid`:`gid`), read-only root with `/tmp` writable.
    pub fn image_user(account: &str, uid: i64, gid: i64) -> Self {
        Self {
            run_as_user: uid,
            run_as_group: gid,
            user_owner: UserOwner::Image {
                account: account.to_owned(),
            },
            ..Self::default()
        }
    }

    /// Checks the ids and the writable directories.
    pub(super) fn validate(&self) -> Result<(), K8sError> {
        let bad = |field: &str, found: String, expected: &str| {
            Err(K8sError::InvalidProps {
                field: field.to_owned(),
                found,
                expected: expected.to_owned(),
            })
        };
        let least_uid = match &self.user_owner {
            UserOwner::Keel => 10000,
            UserOwner::Image { account } => {
                if account.is_empty() || account.contains(char::is_whitespace) {
                    return bad(
                        "security.user_owner",
                        format!("account `{account}`"),
                        "the name of the image's account, e.g. `nginx`",
                    );
                }
                1
            }
        };
        if self.run_as_user < least_uid || self.run_as_group < 1 {
            return bad(
                "security",
                format!(
                    "run_as_user {} run_as_group {}",
                    self.run_as_user, self.run_as_group
                ),
                &format!(
                    "run_as_user >= {least_uid} and a non-zero run_as_group (a uid below 10000 only as the image's own account)"
                ),
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, dir) in self.writable_dirs.iter().enumerate() {
            let field = format!("security.writable_dirs[{i}]");
            dir.validate(&field)?;
            if !names.insert(dir.volume_name()) {
                return bad(
                    &field,
                    format!("path `{}`, a second time", dir.path),
                    "each directory once",
                );
            }
        }
        Ok(())
    }
}

/// A container that runs to completion before the app's container starts (an init
/// container), under the same restricted security context (the pod's user, read-only root,
/// no capabilities), filling one directory the app then reads, e.g. a CA bundle fetched at
/// start.
///
/// See <https://kubernetes.io/docs/concepts/workloads/pods/init-containers/>.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitContainer {
    /// Container name, a DNS label other than the app's, e.g. `rds-ca`.
    pub name: String,
    /// Image, pinned by digest.
    pub image: Image,
    /// POSIX shell lines, run by `/bin/sh -c` after `set -eu` (any failing line fails the
    /// pod's start).
    pub script: String,
    /// Requests and limits. A pod requests, per resource, the larger of its biggest init
    /// container and the sum of its app containers; the namespace quota counts that
    /// ([`super::Peak::service`]).
    pub resources: Resources,
    /// The directory it fills: an emptyDir of bounded size, writable here only, mounted
    /// read-only at the same path in the app's container.
    pub fills: WritableDir,
}

impl InitContainer {
    /// Checks the name, image, size and the directory (not one of the app's own).
    fn validate(&self, app: &str, sec: &PodSecurity) -> Result<(), K8sError> {
        let field = format!("init_containers.{}", self.name);
        super::labels::validate_dns_label("init container name", &self.name)?;
        let clash = self.name == app
            || sec
                .writable_dirs
                .iter()
                .any(|d| d.volume_name() == self.fills.volume_name() || d.path == self.fills.path);
        if clash {
            return Err(K8sError::InvalidProps {
                field,
                found: format!("name `{}` filling `{}`", self.name, self.fills.path),
                expected:
                    "a name other than the app's and a directory that is none of its writable ones"
                        .to_owned(),
            });
        }
        self.image.validate()?;
        self.image.require_digest()?;
        self.fills.validate(&format!("{field}.fills"))
    }
}

/// A pod count or a percentage of the desired pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodCount {
    /// An absolute number of pods.
    Count(i32),
    /// A percentage of the desired replicas, 0..=100.
    Percent(u8),
}

impl PodCount {
    pub(super) fn to_int_or_string(self) -> IntOrString {
        match self {
            Self::Count(n) => IntOrString::Int(n),
            Self::Percent(p) => IntOrString::String(format!("{p}%")),
        }
    }

    fn validate(self, field: &str) -> Result<(), K8sError> {
        let ok = match self {
            Self::Count(n) => n >= 0,
            Self::Percent(p) => p <= 100,
        };
        if ok {
            Ok(())
        } else {
            Err(K8sError::InvalidProps {
                field: field.to_owned(),
                found: format!("{self:?}"),
                expected: "a count >= 0 or a percentage 0..=100".to_owned(),
            })
        }
    }
}

/// RollingUpdate strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollingUpdate {
    /// Extra pods during a rollout. Default: `25%`.
    pub max_surge: PodCount,
    /// Pods that may be unavailable during a rollout. Default: `0` (capacity never drops).
    pub max_unavailable: PodCount,
}

impl Default for RollingUpdate {
    fn default() -> Self {
        Self {
            max_surge: PodCount::Percent(25),
            max_unavailable: PodCount::Count(0),
        }
    }
}

/// What the scheduler does when pods cannot be spread evenly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenUnsatisfiable {
    /// Leave the pod pending (strict spread).
    DoNotSchedule,
    /// Schedule anyway, preferring the least loaded domain.
    ScheduleAnyway,
}

impl WhenUnsatisfiable {
    fn as_str(self) -> &'static str {
        match self {
            Self::DoNotSchedule => "DoNotSchedule",
            Self::ScheduleAnyway => "ScheduleAnyway",
        }
    }
}

/// Spread of pods across zones and nodes (max skew 1).
///
/// See <https://kubernetes.io/docs/concepts/scheduling-eviction/topology-spread-constraints/>.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopologySpread {
    /// Across `topology.kubernetes.io/zone`. Default: `ScheduleAnyway`.
    pub zone: WhenUnsatisfiable,
    /// Across `kubernetes.io/hostname`. Default: `ScheduleAnyway`.
    pub hostname: WhenUnsatisfiable,
}

impl Default for TopologySpread {
    fn default() -> Self {
        Self {
            zone: WhenUnsatisfiable::ScheduleAnyway,
            hostname: WhenUnsatisfiable::ScheduleAnyway,
        }
    }
}

fn http_probe(path: &str, period: i32, timeout: i32, failures: i32) -> Result<Probe, K8sError> {
    if !path.starts_with('/') {
        return Err(K8sError::InvalidProps {
            field: "probes".to_owned(),
            found: format!("path `{path}`"),
            expected: "an absolute path such as `/health`".to_owned(),
        });
    }
    Ok(Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(HTTP_PORT_NAME.to_owned()),
            scheme: Some("HTTP".to_owned()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(timeout),
        failure_threshold: Some(failures),
        success_threshold: Some(1),
        ..Default::default()
    })
}

/// Pod-template annotation holding the SHA-256 of the ConfigMap's data.
pub const CONFIG_HASH_ANNOTATION: &str = "checksum/config";

/// SHA-256 (hex) of the settings, keys sorted: changes exactly when the ConfigMap does.
fn config_hash(config: &BTreeMap<String, String>) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (key, value) in config {
        // Length-prefixed, so no two different maps hash the same bytes.
        for part in [key, value] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A replica count or percentage from an environment value.
pub fn count(v: u32) -> Result<i32, String> {
    i32::try_from(v)
        .map_err(|_| format!("{v} is too large for a Kubernetes replica count or percentage"))
}

pub(super) fn build(
    ctx: &Ctx<'_>,
    secret_refs: &[(String, String, String)],
    config_map: Option<&str>,
) -> Result<Object, K8sError> {
    let p = ctx.props;
    let (selector, template) = pod_template(ctx, secret_refs, config_map)?;
    let deployment = Deployment {
        metadata: ctx.meta("Deployment", ctx.name(), BTreeMap::new())?,
        spec: Some(DeploymentSpec {
            // With an HPA, the HPA owns the count: a value here would reset it on every apply.
            replicas: p.autoscaling.is_none().then_some(p.replicas),
            revision_history_limit: Some(REVISION_HISTORY_LIMIT),
            selector,
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(p.rollout.max_surge.to_int_or_string()),
                    max_unavailable: Some(p.rollout.max_unavailable.to_int_or_string()),
                }),
            }),
            template,
            ..Default::default()
        }),
        ..Default::default()
    };
    Object::new(Rank::Workload, &deployment)
}

/// Old ReplicaSets kept for `kubectl rollout undo` (Deployment and Rollout alike).
pub(super) const REVISION_HISTORY_LIMIT: i32 = 5;

/// The workload's selector and pod template, shared by the Deployment and the Argo Rollout;
/// checks the props they depend on (image, security, ports, grace, surge).
pub(super) fn pod_template(
    ctx: &Ctx<'_>,
    secret_refs: &[(String, String, String)],
    config_map: Option<&str>,
) -> Result<(LabelSelector, PodTemplateSpec), K8sError> {
    let p = ctx.props;
    p.image.validate()?;
    let sec = &p.security;
    sec.validate()?;
    if p.ports.http == 0 || p.ports.metrics == Some(0) || Some(p.ports.http) == p.ports.metrics {
        return Err(K8sError::InvalidProps {
            field: "ports".to_owned(),
            found: format!("http {} metrics {:?}", p.ports.http, p.ports.metrics),
            expected: "two different non-zero ports".to_owned(),
        });
    }
    if !(1..=3600).contains(&p.termination_grace_period_seconds) {
        return Err(K8sError::InvalidProps {
            field: "termination_grace_period_seconds".to_owned(),
            found: p.termination_grace_period_seconds.to_string(),
            expected: "1..=3600".to_owned(),
        });
    }
    if !(0..p.termination_grace_period_seconds).contains(&p.pre_stop_pause_seconds) {
        return Err(K8sError::InvalidProps {
            field: "pre_stop_pause_seconds".to_owned(),
            found: format!(
                "{} with a grace period of {}",
                p.pre_stop_pause_seconds, p.termination_grace_period_seconds
            ),
            expected:
                "0 or more, and shorter than the grace period (which must also cover the drain)"
                    .to_owned(),
        });
    }
    p.rollout.max_surge.validate("rollout.max_surge")?;
    p.rollout
        .max_unavailable
        .validate("rollout.max_unavailable")?;
    if matches!(
        p.rollout.max_surge,
        PodCount::Count(0) | PodCount::Percent(0)
    ) && matches!(
        p.rollout.max_unavailable,
        PodCount::Count(0) | PodCount::Percent(0)
    ) {
        return Err(K8sError::InvalidProps {
            field: "rollout".to_owned(),
            found: "max_surge 0 and max_unavailable 0".to_owned(),
            expected: "at least one of them above 0, or the rollout cannot progress".to_owned(),
        });
    }
    let resources = requirements("resources", &p.resources)?;
    let env: Vec<EnvVar> = secret_refs
        .iter()
        .map(|(var, secret, key)| EnvVar {
            name: var.clone(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret.clone(),
                    key: key.clone(),
                    optional: Some(false),
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let env_from = config_map.map(|name| {
        vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: name.to_owned(),
                optional: Some(false),
            }),
            ..Default::default()
        }]
    });
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for dir in &sec.writable_dirs {
        let name = dir.volume_name();
        volumes.push(Volume {
            name: name.clone(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(quantity(&name, &dir.size_limit)?),
                ..Default::default()
            }),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            name,
            mount_path: dir.path.clone(),
            ..Default::default()
        });
    }
    let mut init_containers = Vec::new();
    for init in &p.init_containers {
        init.validate(ctx.name(), sec)?;
        if init_containers
            .iter()
            .any(|c: &Container| c.name == init.name)
        {
            return Err(K8sError::InvalidProps {
                field: format!("init_containers.{}", init.name),
                found: "the name a second time".to_owned(),
                expected: "each init container once".to_owned(),
            });
        }
        let name = init.fills.volume_name();
        volumes.push(Volume {
            name: name.clone(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(quantity(&name, &init.fills.size_limit)?),
                ..Default::default()
            }),
            ..Default::default()
        });
        // The app reads what the init container wrote, and cannot change it.
        mounts.push(VolumeMount {
            name: name.clone(),
            mount_path: init.fills.path.clone(),
            read_only: Some(true),
            ..Default::default()
        });
        init_containers.push(Container {
            name: init.name.clone(),
            image: Some(init.image.reference()),
            image_pull_policy: Some("Always".to_owned()),
            command: Some(vec![
                "/bin/sh".to_owned(),
                "-c".to_owned(),
                format!("set -eu\n{}", init.script),
            ]),
            resources: Some(requirements(
                &format!("init_containers.{}.resources", init.name),
                &init.resources,
            )?),
            security_context: Some(restricted(sec, true)),
            volume_mounts: Some(vec![VolumeMount {
                name,
                mount_path: init.fills.path.clone(),
                ..Default::default()
            }]),
            ..Default::default()
        });
    }
    let port = |name: &str, number: u16| ContainerPort {
        name: Some(name.to_owned()),
        container_port: i32::from(number),
        protocol: Some("TCP".to_owned()),
        ..Default::default()
    };
    let container = Container {
        name: ctx.name().to_owned(),
        image: Some(p.image.reference()),
        image_pull_policy: Some("Always".to_owned()),
        ports: Some(
            std::iter::once(port(HTTP_PORT_NAME, p.ports.http))
                .chain(p.ports.metrics.map(|m| port(METRICS_PORT_NAME, m)))
                .collect(),
        ),
        env: (!env.is_empty()).then_some(env),
        env_from,
        resources: Some(resources),
        startup_probe: Some(http_probe(
            &p.probes.startup_path,
            10,
            3,
            p.probes.startup_failure_threshold.max(1),
        )?),
        liveness_probe: Some(http_probe(&p.probes.liveness_path, 10, 5, 3)?),
        readiness_probe: Some(http_probe(&p.probes.readiness_path, 5, 3, 3)?),
        security_context: Some(restricted(sec, sec.read_only_root_filesystem)),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        lifecycle: (p.pre_stop_pause_seconds > 0).then(|| Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction {
                    seconds: p.pre_stop_pause_seconds,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let selector = LabelSelector {
        match_labels: Some(ctx.selector.clone()),
        ..Default::default()
    };
    let spread = |key: &str, when: WhenUnsatisfiable| TopologySpreadConstraint {
        max_skew: 1,
        topology_key: key.to_owned(),
        when_unsatisfiable: when.as_str().to_owned(),
        label_selector: Some(selector.clone()),
        match_label_keys: Some(vec!["pod-template-hash".to_owned()]),
        ..Default::default()
    };
    let pod = PodSpec {
        containers: vec![container],
        init_containers: (!init_containers.is_empty()).then_some(init_containers),
        service_account_name: Some(ctx.name().to_owned()),
        automount_service_account_token: Some(p.service_account.needs_api),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(p.termination_grace_period_seconds),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(sec.run_as_user),
            run_as_group: Some(sec.run_as_group),
            fs_group: Some(sec.run_as_group),
            seccomp_profile: Some(runtime_default()),
            ..Default::default()
        }),
        topology_spread_constraints: Some(vec![
            spread("topology.kubernetes.io/zone", p.topology_spread.zone),
            spread("kubernetes.io/hostname", p.topology_spread.hostname),
        ]),
        volumes: (!volumes.is_empty()).then_some(volumes),
        ..Default::default()
    };
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(ctx.labels.clone()),
            // A changed ConfigMap rolls the pods (env is read only at start).
            annotations: config_map.map(|_| {
                BTreeMap::from([(CONFIG_HASH_ANNOTATION.to_owned(), config_hash(&p.config))])
            }),
            ..Default::default()
        }),
        spec: Some(pod),
    };
    Ok((selector, template))
}

/// `RuntimeDefault` seccomp, as Pod Security `restricted` requires.
fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        ..Default::default()
    }
}

/// A container's restricted security context: the pod's user and group, non-root, no
/// privilege escalation, no capabilities, `RuntimeDefault` seccomp, the root file system
/// read-only when `read_only_root`.
fn restricted(sec: &PodSecurity, read_only_root: bool) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(read_only_root),
        run_as_non_root: Some(true),
        run_as_user: Some(sec.run_as_user),
        run_as_group: Some(sec.run_as_group),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        }),
        seccomp_profile: Some(runtime_default()),
        ..Default::default()
    }
}

/// CPU and memory requests and limits of `r`; `field` names the setting in errors.
fn requirements(field: &str, r: &Resources) -> Result<ResourceRequirements, K8sError> {
    let pair = |cpu: &str, cpu_value: &str, memory: &str, memory_value: &str| {
        Ok::<_, K8sError>(BTreeMap::from([
            (
                "cpu".to_owned(),
                quantity(&format!("{field}.{cpu}"), cpu_value)?,
            ),
            (
                "memory".to_owned(),
                quantity(&format!("{field}.{memory}"), memory_value)?,
            ),
        ]))
    };
    Ok(ResourceRequirements {
        requests: Some(pair(
            "requests_cpu",
            &r.requests_cpu,
            "requests_memory",
            &r.requests_memory,
        )?),
        limits: Some(pair(
            "limits_cpu",
            &r.limits_cpu,
            "limits_memory",
            &r.limits_memory,
        )?),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_pinning() {
        let tag = Image::Tag {
            repo: "ghcr.io/acme/app".into(),
            tag: "1.0.0".into(),
        };
        assert!(tag.validate().is_ok());
        let err = tag.require_digest().unwrap_err();
        assert_eq!(
            err.to_string(),
            "image ghcr.io/acme/app:1.0.0: found a tag, expected a digest (`repo@sha256:<64 hex>`) because this environment requires digests"
        );
        let digest = Image::Digest {
            repo: "ghcr.io/acme/app".into(),
            digest: format!("sha256:{}", "a".repeat(64)),
        };
        assert!(digest.validate().is_ok() && digest.require_digest().is_ok());
        assert!(
            Image::Tag {
                repo: "app".into(),
                tag: "latest".into()
            }
            .validate()
            .is_err()
        );
        assert!(
            Image::Digest {
                repo: "app".into(),
                digest: "sha256:abc".into()
            }
            .validate()
            .is_err()
        );
        assert!(
            Image::Tag {
                repo: "app:1".into(),
                tag: "2".into()
            }
            .validate()
            .is_err()
        );
        assert!(
            Image::Tag {
                repo: "localhost:5000/app".into(),
                tag: "2".into()
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn the_image_user_and_writable_dirs_are_checked() {
        let nginx = PodSecurity::image_user("nginx", 101, 101);
        assert!(nginx.validate().is_ok());
        let low = PodSecurity {
            run_as_user: 101,
            ..PodSecurity::default()
        };
        assert!(
            low.validate()
                .unwrap_err()
                .to_string()
                .contains("only as the image's own account")
        );
        assert!(PodSecurity::image_user("nginx", 0, 101).validate().is_err());
        assert!(PodSecurity::image_user("", 101, 101).validate().is_err());
        let with = |path: &str, size: &str| {
            let mut s = PodSecurity::default();
            s.writable_dirs.push(WritableDir::new(path, size));
            s.validate()
        };
        assert!(with("/var/cache/nginx", "64Mi").is_ok());
        assert_eq!(
            WritableDir::new("/var/cache/nginx", "1Mi").volume_name(),
            "var-cache-nginx"
        );
        for path in ["var/run", "/", "/tmp", "/a/../b", "/A", "/a/", "/a//b"] {
            assert!(with(path, "1Mi").is_err(), "{path}");
        }
        assert!(with("/data", "lots").is_err());
    }
}
