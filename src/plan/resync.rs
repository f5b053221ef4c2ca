//! Secret changes reaching their readers: the commands that force an ExternalSecret to
//! re-read its store now and wait until it did, and that restart the workloads reading
//! a synced Secret whose value changed since they were last restarted for it.
//!
//! External Secrets re-reads a store on its `refreshInterval` (5 minutes for a login Job,
//! an hour for applications) and whenever the ExternalSecret's annotations change, and
//! sets `status.refreshTime` and the `Ready` condition after each successful sync. A
//! workload reads its Secret at start only. The deploy plan therefore force-syncs the
//! login's ExternalSecret before its Job runs (the Job sets the database password from
//! it), and after the apply force-syncs every application ExternalSecret and restarts the
//! readers whose Secret changed ([`restart_command`]): rotating a password is one run of
//! the plan's cluster steps, whatever the refresh intervals.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::build::Command;
use crate::k8s::Object;

/// The annotation External Secrets defines to force a sync (`esv1.AnnotationForceSync`);
/// any change of an ExternalSecret's annotations makes it re-read its store.
pub const FORCE_SYNC_ANNOTATION: &str = "external-secrets.io/force-sync";

/// The annotation on a workload holding the SHA-256 of the Secrets it last restarted for.
pub const SECRETS_HASH_ANNOTATION: &str = "keel.dev/secrets-sha256";

/// Seconds an ExternalSecret has to re-sync after the annotation before the step fails:
/// on a first deploy its store was just created (its IRSA role too) and External Secrets
/// may need a few retries with back-off.
pub const SYNC_TIMEOUT_SECONDS: u32 = 300;

/// Seconds a restarted workload has to roll out before the step fails.
pub const RESTART_TIMEOUT_SECONDS: u32 = 900;

/// Annotates the ExternalSecret `$2` of namespace `$1` and waits (at most `$3` seconds)
/// until its `refreshTime` moved and its `Ready` condition is `True`. `refreshTime` has
/// one-second resolution, hence the second before the annotation.
const SYNC: &str = r#"set -eu
ns=$1 es=$2 limit=$3
get() { kubectl --namespace "$ns" get externalsecret "$es" --output "jsonpath=$1"; }
before=$(get '{.status.refreshTime}')
sleep 1
kubectl --namespace "$ns" annotate externalsecret "$es" "external-secrets.io/force-sync=$(date +%s)" --overwrite
waited=0
until [ "$(get '{.status.refreshTime}')" != "$before" ] && [ "$(get '{.status.conditions[?(@.type=="Ready")].status}')" = True ]; do
  if [ "$waited" -ge "$limit" ]; then
    echo "ExternalSecret $ns/$es did not re-sync from its store within ${limit}s (refreshTime still '$before' or not Ready): kubectl --namespace $ns describe externalsecret $es" >&2
    exit 1
  fi
  sleep 2
  waited=$((waited + 2))
done
echo "ExternalSecret $ns/$es re-synced at $(get '{.status.refreshTime}')"
"#;

/// For each `KIND/NAME=SECRET[,SECRET...]` after namespace `$1` and timeout `$2`: hashes
/// the Secrets' data and, unless the workload's annotation already holds that hash,
/// restarts it (a Deployment through `kubectl rollout restart`, an Argo Rollout through
/// `spec.restartAt`, what `kubectl argo rollouts restart` sets), waits for the rollout and
/// records the hash. One workload after the other, in the order given.
const RESTART: &str = r#"set -eu
ns=$1 limit=$2
shift 2
for reader in "$@"; do
  workload=${reader%%=*}
  secrets=${reader#*=}
  kind=${workload%%/*}
  name=${workload#*/}
  sum=$(for s in $(echo "$secrets" | tr , ' '); do kubectl --namespace "$ns" get secret "$s" --output 'jsonpath={.data}'; echo; done | sha256sum | cut -c1-64)
  seen=$(kubectl --namespace "$ns" get "$kind" "$name" --output 'jsonpath={.metadata.annotations.keel\.dev/secrets-sha256}')
  if [ "$seen" = "$sum" ]; then
    echo "$workload already runs with the current values of $secrets"
    continue
  fi
  case "$kind" in
    deployment)
      kubectl --namespace "$ns" rollout restart deployment "$name"
      kubectl --namespace "$ns" rollout status deployment "$name" --timeout="${limit}s"
      ;;
    rollout.argoproj.io)
      at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
      kubectl --namespace "$ns" patch rollout.argoproj.io "$name" --type merge --patch "{\"spec\":{\"restartAt\":\"$at\"}}"
      kubectl --namespace "$ns" wait rollout.argoproj.io "$name" "--for=jsonpath={.status.restartedAt}=$at" --timeout="${limit}s"
      kubectl --namespace "$ns" wait rollout.argoproj.io "$name" '--for=jsonpath={.status.phase}=Healthy' --timeout="${limit}s"
      ;;
    *)
      echo "cannot restart $workload: expected deployment/NAME or rollout.argoproj.io/NAME" >&2
      exit 2
      ;;
  esac
  kubectl --namespace "$ns" annotate "$kind" "$name" "keel.dev/secrets-sha256=$sum" --overwrite
done
"#;

fn sh(script: &str, args: impl IntoIterator<Item = String>) -> Command {
    ["sh", "-c", script, "sh"]
        .iter()
        .map(|a| (*a).to_owned())
        .chain(args)
        .collect()
}

/// The command that force-syncs ExternalSecret `name` of `namespace` and waits until it
/// re-read its store, failing after [`SYNC_TIMEOUT_SECONDS`].
pub fn sync_command(namespace: &str, name: &str) -> Command {
    sh(
        SYNC,
        [
            namespace.to_owned(),
            name.to_owned(),
            SYNC_TIMEOUT_SECONDS.to_string(),
        ],
    )
}

/// A workload that reads Secrets an ExternalSecret of its stack syncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    /// Namespace of the workload and its Secrets.
    pub namespace: String,
    /// `deployment` or `rollout.argoproj.io`.
    pub kind: &'static str,
    /// Workload name.
    pub name: String,
    /// The synced Secrets it reads, sorted.
    pub secrets: Vec<String>,
}

/// The ExternalSecrets among `objects` (`(namespace, name)`) and the Deployments and
/// Rollouts that read a Secret one of them writes, in the objects' order.
pub fn secret_readers(objects: &[Object]) -> (Vec<(String, String)>, Vec<Reader>) {
    let mut synced: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut externals = Vec::new();
    for o in objects.iter().filter(|o| o.kind == "ExternalSecret") {
        let Some(ns) = o.namespace.as_deref() else {
            continue;
        };
        let target = o.content["spec"]["target"]["name"]
            .as_str()
            .unwrap_or(o.name.as_str());
        synced.entry(ns).or_default().insert(target.to_owned());
        externals.push((ns.to_owned(), o.name.clone()));
    }
    let mut readers = Vec::new();
    for o in objects {
        let kind = match o.kind.as_str() {
            "Deployment" => "deployment",
            "Rollout" => "rollout.argoproj.io",
            _ => continue,
        };
        let Some(ns) = o.namespace.as_deref() else {
            continue;
        };
        let Some(names) = synced.get(ns) else {
            continue;
        };
        let mut read = BTreeSet::new();
        secret_names(&o.content["spec"]["template"], &mut read);
        let secrets: Vec<String> = read.intersection(names).cloned().collect();
        if !secrets.is_empty() {
            readers.push(Reader {
                namespace: ns.to_owned(),
                kind,
                name: o.name.clone(),
                secrets,
            });
        }
    }
    (externals, readers)
}

/// Every Secret a pod template names: `secretKeyRef`, `secretRef` (envFrom) and `secret`
/// volumes.
fn secret_names(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let name = match key.as_str() {
                    "secretKeyRef" | "secretRef" => v["name"].as_str(),
                    "secret" => v["secretName"].as_str(),
                    _ => None,
                };
                if let Some(name) = name {
                    out.insert(name.to_owned());
                }
                secret_names(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| secret_names(v, out)),
        _ => {}
    }
}

/// The command that restarts each of `readers` (all of one namespace) whose Secrets
/// changed since it last restarted for them, one after the other.
pub fn restart_command(namespace: &str, readers: &[Reader]) -> Command {
    let args = [namespace.to_owned(), RESTART_TIMEOUT_SECONDS.to_string()]
        .into_iter()
        .chain(
            readers
                .iter()
                .map(|r| format!("{}/{}={}", r.kind, r.name, r.secrets.join(","))),
        );
    sh(RESTART, args)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::k8s::Rank;

    /// A workload-ranked object of `content` (which names its kind and name).
    fn object(content: Value) -> Object {
        Object::new(Rank::Workload, &content).expect("a test object has a kind and a name")
    }

    #[test]
    fn readers_are_the_workloads_naming_a_synced_secret() {
        let objects = vec![
            object(json!({"kind": "ExternalSecret",
                "metadata": {"name": "api", "namespace": "shop"},
                "spec": {"target": {"name": "api-secrets"}}})),
            object(
                json!({"kind": "Rollout", "metadata": {"name": "api", "namespace": "shop"},
                "spec": {"template": {"spec": {"containers": [{"env": [
                    {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "api-secrets", "key": "url"}}},
                    {"name": "TLS", "valueFrom": {"secretKeyRef": {"name": "not-synced", "key": "k"}}}
                ]}]}}}}),
            ),
            object(
                json!({"kind": "Deployment", "metadata": {"name": "worker", "namespace": "shop"},
                "spec": {"template": {"spec": {"volumes": [{"name": "s", "secret": {"secretName": "api-secrets"}}]}}}}),
            ),
            object(
                json!({"kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"template": {"spec": {"containers": [{"image": "web"}]}}}}),
            ),
        ];
        let (externals, readers) = secret_readers(&objects);
        assert_eq!(externals, vec![("shop".to_owned(), "api".to_owned())]);
        let shown: Vec<String> = readers
            .iter()
            .map(|r| format!("{}/{}={}", r.kind, r.name, r.secrets.join(",")))
            .collect();
        assert_eq!(
            shown,
            [
                "rollout.argoproj.io/api=api-secrets",
                "deployment/worker=api-secrets"
            ]
        );
    }

    /// Runs `command` with a fake `kubectl` (a script over files in a temporary directory)
    /// first on the PATH; returns its success, standard error and the fake's call log.
    fn run_with_fake_kubectl(command: &Command, kubectl: &str) -> (bool, String, String) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("kubectl");
        std::fs::write(&bin, kubectl).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = std::process::Command::new(&command[0])
            .args(&command[1..])
            .env("PATH", path)
            .env("STATE", dir.path())
            .output()
            .unwrap();
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            log,
        )
    }

    /// A fake kubectl whose ExternalSecret refreshes on `annotate` when `$STATE/syncs`
    /// exists, and reports `Ready=True`.
    const FAKE_ES: &str = r#"#!/bin/sh
echo "$*" >> "$STATE/log"
case "$*" in
  *annotate*) [ -e "$STATE/syncs" ] && echo 2026-12-05T01:00:01Z > "$STATE/refresh"; exit 0 ;;
  *refreshTime*) cat "$STATE/refresh" 2>/dev/null || echo 2026-12-05T00:00:00Z ;;
  *Ready*) echo True ;;
esac
"#;

    #[test]
    fn sync_annotates_then_waits_for_a_new_refresh_time() {
        let mut command = sync_command("shop", "database-login");
        // A short bound for the test.
        *command.last_mut().unwrap() = "2".into();
        let synced = format!("touch \"$STATE/syncs\"; {}", &command[2]);
        let mut with_sync = command.clone();
        with_sync[2] = synced;
        let (ok, stderr, log) = run_with_fake_kubectl(&with_sync, FAKE_ES);
        assert!(ok, "{stderr}");
        assert!(
            log.contains(&format!(
                "annotate externalsecret database-login {FORCE_SYNC_ANNOTATION}="
            )),
            "{log}"
        );
        let (ok, stderr, _) = run_with_fake_kubectl(&command, FAKE_ES);
        assert!(!ok, "no refresh must fail the step");
        assert!(
            stderr.contains(
                "ExternalSecret shop/database-login did not re-sync from its store within 2s"
            ),
            "{stderr}"
        );
    }

    /// A fake kubectl holding one Secret's data in `$STATE/data` and the workload's
    /// annotation in `$STATE/seen`.
    const FAKE_RESTART: &str = r#"#!/bin/sh
echo "$*" >> "$STATE/log"
case "$*" in
  *"get secret"*) cat "$STATE/data" ;;
  *secrets-sha256}*) cat "$STATE/seen" 2>/dev/null || true ;;
  *"annotate deployment"*) echo "${6#keel.dev/secrets-sha256=}" > "$STATE/seen" ;;
esac
"#;

    #[test]
    fn restart_happens_once_per_change_of_the_secret() {
        let readers = [Reader {
            namespace: "shop".into(),
            kind: "deployment",
            name: "api".into(),
            secrets: vec!["api-secrets".into()],
        }];
        let command = restart_command("shop", &readers);
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().to_string_lossy().into_owned();
        // The same state directory across runs: the fake writes into $STATE.
        let run = |data: &str| {
            std::fs::write(dir.path().join("data"), data).unwrap();
            let _ = std::fs::remove_file(dir.path().join("log"));
            let mut c = command.clone();
            c[2] = format!("export STATE={state}; {}", command[2]);
            let (ok, stderr, _) = run_with_fake_kubectl(&c, FAKE_RESTART);
            assert!(ok, "{stderr}");
            std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
        };
        assert!(run("{\"password\":\"b2xk\"}").contains("rollout restart deployment api"));
        assert!(!run("{\"password\":\"b2xk\"}").contains("rollout restart"));
        assert!(run("{\"password\":\"bmV3\"}").contains("rollout restart deployment api"));
    }
}
