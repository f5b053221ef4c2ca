//! Regressions of the production review (issue 19), points 9 and 8: every PostgreSQL
//! client verifies the server against the RDS CA (no `sslmode=require` left), the pods that
//! fetch the bundle in an init container still meet Pod Security `restricted`, and no
//! SecretStore is authenticated by the External Secrets controller's own role.

use crate::common;

use std::collections::BTreeMap;

use common::{k8s_docs, outputs, resources};
use keel::ops::synth::Output;
use keel_workload_contract as contract;
use serde_json::{Value, json};

/// Kinds whose `spec.template.spec` is a pod.
const POD_TEMPLATE_KINDS: [&str; 4] = ["Deployment", "Rollout", "Job", "StatefulSet"];

/// Every pod template of a stack as (where, its workload document).
fn workloads(o: &Output) -> Vec<(String, Value)> {
    k8s_docs(o)
        .into_iter()
        .filter(|(_, d)| {
            POD_TEMPLATE_KINDS.contains(&d["kind"].as_str().unwrap_or_default())
                && d["spec"]["template"]["spec"].is_object()
        })
        .map(|(path, d)| (format!("{} {} {path}", o.env, o.stack), d))
        .collect()
}

/// Secrets Manager name -> secret string, of the PostgreSQL URLs a root composes.
fn database_urls(o: &Output) -> BTreeMap<String, String> {
    let all = resources(o);
    let name_of = |id: &str| {
        all.iter()
            .find(|(t, n, _)| t == "aws_secretsmanager_secret" && n == id)
            .and_then(|(_, _, b)| b["name"].as_str())
            .map(str::to_owned)
    };
    all.iter()
        .filter(|(t, _, _)| t == "aws_secretsmanager_secret_version")
        .filter_map(|(_, _, b)| {
            let url = b["secret_string"].as_str()?;
            if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                return None;
            }
            let id = b["secret_id"]
                .as_str()?
                .strip_prefix("${aws_secretsmanager_secret.")?
                .strip_suffix(".id}")?;
            Some((name_of(id)?, url.to_owned()))
        })
        .collect()
}

/// The Secrets Manager name behind `secretKeyRef` (`secret`, `key`) in `namespace`,
/// through the ExternalSecret that writes that Secret.
fn remote_key(docs: &[Value], namespace: &Value, secret: &str, key: &str) -> Option<String> {
    docs.iter()
        .filter(|d| d["kind"] == "ExternalSecret" && d["metadata"]["namespace"] == *namespace)
        .filter(|d| {
            d["spec"]["target"]["name"]
                .as_str()
                .or(d["metadata"]["name"].as_str())
                == Some(secret)
        })
        .flat_map(|d| d["spec"]["data"].as_array().cloned().unwrap_or_default())
        .find(|data| data["secretKey"] == key)
        .and_then(|data| data["remoteRef"]["key"].as_str().map(str::to_owned))
}

/// The query parameters of a URL.
fn query(url: &str) -> BTreeMap<String, String> {
    url.split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Whether `path` lies in directory `dir`.
fn under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// Why the container `c` of `pod` would not find the CA bundle at `ca`, if it would not:
/// a bundle under one of its mounts must be in an emptyDir it mounts read-only and an init
/// container of the pod fetches it there; any other path must be the one the workload
/// contract's image carries.
fn bundle_missing(pod: &Value, c: &Value, ca: &str) -> Option<String> {
    let mount = c["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| under(ca, m["mountPath"].as_str().unwrap_or_default()));
    let Some(mount) = mount else {
        return (ca != contract::DATABASE_CA_BUNDLE_PATH)
            .then(|| format!("{ca} is on no volume and not the contract image's bundle"));
    };
    if mount["readOnly"] != true {
        return Some(format!("the app may rewrite its CA bundle {ca}"));
    }
    let volume = &mount["name"];
    let empty_dir = pod["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|v| v["name"] == *volume && v["emptyDir"].is_object());
    let fetched = pod["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|init| {
            init["command"].to_string().contains(&format!("-O {ca} "))
                && init["volumeMounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|m| m["name"] == *volume && m["readOnly"] != true)
        });
    (!(empty_dir && fetched)).then(|| format!("no init container fetches {ca} into an emptyDir"))
}

/// Whether `cidr` is inside 10/8, 172.16/12 or 192.168/16.
fn private(cidr: &str) -> bool {
    let ip: std::net::Ipv4Addr = cidr
        .split_once('/')
        .and_then(|(ip, _)| ip.parse().ok())
        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
    ip.is_private()
}

/// Whether some NetworkPolicy of the namespace selects `labels` and lets them reach TCP 443
/// on public addresses only (an `ipBlock` of `0.0.0.0/0` leaving out private ranges).
fn reaches_public_https_only(docs: &[Value], namespace: &Value, labels: &Value) -> bool {
    docs.iter()
        .filter(|d| d["kind"] == "NetworkPolicy" && d["metadata"]["namespace"] == *namespace)
        .filter(|d| {
            d["spec"]["podSelector"]["matchLabels"]
                .as_object()
                .is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| labels[k] == *v))
        })
        .flat_map(|d| d["spec"]["egress"].as_array().cloned().unwrap_or_default())
        .any(|rule| {
            rule["ports"] == json!([{"port": 443, "protocol": "TCP"}])
                && rule["to"].as_array().is_some_and(|to| {
                    to.iter().all(|peer| {
                        let block = &peer["ipBlock"];
                        block["cidr"] == "0.0.0.0/0"
                            && block["except"].as_array().is_some_and(|e| {
                                !e.is_empty() && e.iter().all(|c| private(c.as_str().unwrap_or("")))
                            })
                    })
                })
        })
}

#[test]
fn issue19_9_no_client_encrypts_without_verifying() {
    let mut clients = Vec::new();
    for o in outputs() {
        for (path, body) in &o.files {
            assert!(
                !body.contains("sslmode=require"),
                "{} {} {}: a client encrypts without verifying the server",
                o.env,
                o.stack,
                path.display()
            );
        }
        let urls = database_urls(&o);
        for (url_name, url) in &urls {
            let q = query(url);
            assert_eq!(
                q.get("sslmode").map(String::as_str),
                Some("verify-full"),
                "{} {} {url_name}",
                o.env,
                o.stack
            );
            assert!(
                q.contains_key("sslrootcert"),
                "{} {} {url_name}",
                o.env,
                o.stack
            );
        }
        let docs: Vec<Value> = k8s_docs(&o).into_iter().map(|(_, d)| d).collect();
        for (at, w) in workloads(&o) {
            let namespace = &w["metadata"]["namespace"];
            let pod = &w["spec"]["template"]["spec"];
            for c in pod["containers"].as_array().expect("containers") {
                let mut ca = None;
                for e in c["env"].as_array().into_iter().flatten() {
                    let r = &e["valueFrom"]["secretKeyRef"];
                    if let (Some(secret), Some(key)) = (r["name"].as_str(), r["key"].as_str())
                        && let Some(url) =
                            remote_key(&docs, namespace, secret, key).and_then(|k| urls.get(&k))
                    {
                        ca = query(url).get("sslrootcert").cloned();
                    }
                    // libpq's own variables (the login Jobs).
                    if e["name"] == "PGSSLMODE" {
                        assert_eq!(e["value"], "verify-full", "{at}");
                    }
                    if e["name"] == "PGSSLROOTCERT" {
                        ca = e["value"].as_str().map(str::to_owned);
                    }
                }
                let Some(ca) = ca else { continue };
                let is_job = w["kind"] == "Job";
                if !is_job && let Some(why) = bundle_missing(pod, c, &ca) {
                    panic!("{at} {}: {why}", c["name"]);
                }
                if pod["initContainers"].is_array() {
                    assert!(
                        reaches_public_https_only(
                            &docs,
                            namespace,
                            &w["spec"]["template"]["metadata"]["labels"]
                        ),
                        "{at}: the init container cannot reach the RDS trust store over HTTPS, or the pod reaches private addresses on 443"
                    );
                }
                clients.push(format!(
                    "{} {} {}",
                    o.env,
                    o.stack,
                    c["name"].as_str().unwrap_or("")
                ));
            }
        }
    }
    // The clients this point is about: aegistickets' backend and exporter in every
    // environment, beside analytics-api (its image carries the bundle) and the Jobs.
    for env in ["dev", "staging", "prod"] {
        for name in ["backend", "postgres-exporter"] {
            let client = format!("{env} aegistickets {name}");
            assert!(
                clients.contains(&client),
                "{client} not found in {clients:?}"
            );
        }
        assert!(
            clients.contains(&format!("{env} analytics-api analytics-api")),
            "{clients:?}"
        );
    }
}

/// Pod Security Standards `restricted` (Kubernetes 1.33), plus what keel requires of every
/// container besides: a read-only root file system and CPU and memory requests and limits.
/// Returns every violation, naming the container.
///
/// See <https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted>.
fn restricted_violations(pod: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let psc = &pod["securityContext"];
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[host] == true {
            out.push(format!("pod: {host}"));
        }
    }
    const VOLUME_TYPES: [&str; 8] = [
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ];
    for v in pod["volumes"].as_array().into_iter().flatten() {
        let kinds: Vec<&String> = v
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .filter(|k| *k != "name")
            .collect();
        if kinds.iter().any(|k| !VOLUME_TYPES.contains(&k.as_str())) {
            out.push(format!("volume {}: {kinds:?}", v["name"]));
        }
    }
    if psc["runAsUser"] == 0 {
        out.push("pod: runAsUser 0".into());
    }
    let seccomp_ok = |sc: &Value| {
        matches!(
            sc["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault" | "Localhost")
        )
    };
    let containers = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| pod[k].as_array().cloned().unwrap_or_default());
    for c in containers {
        let name = c["name"].as_str().unwrap_or("?").to_owned();
        let sc = &c["securityContext"];
        let mut bad = |what: &str| out.push(format!("{name}: {what}"));
        if sc["privileged"] == true {
            bad("privileged");
        }
        if sc["allowPrivilegeEscalation"] != false {
            bad("allowPrivilegeEscalation is not false");
        }
        if sc["runAsNonRoot"] != true
            && !(psc["runAsNonRoot"] == true && sc["runAsNonRoot"] != false)
        {
            bad("runAsNonRoot is not true");
        }
        if sc["runAsUser"] == 0 {
            bad("runAsUser 0");
        }
        let seccomp = seccomp_ok(sc) || (seccomp_ok(psc) && sc["seccompProfile"].is_null());
        if !seccomp {
            bad("seccomp is neither RuntimeDefault nor Localhost");
        }
        let drop = &sc["capabilities"]["drop"];
        if !drop
            .as_array()
            .is_some_and(|d| d.iter().any(|c| c == "ALL"))
        {
            bad("capabilities do not drop ALL");
        }
        if sc["capabilities"]["add"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c != "NET_BIND_SERVICE"))
        {
            bad("adds a capability other than NET_BIND_SERVICE");
        }
        if c["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["hostPort"].as_i64().is_some_and(|h| h != 0))
        {
            bad("hostPort");
        }
        // keel's own floor.
        if sc["readOnlyRootFilesystem"] != true {
            bad("root file system is writable");
        }
        for k in ["requests", "limits"] {
            for r in ["cpu", "memory"] {
                if !c["resources"][k][r].is_string() {
                    bad(&format!("no {k}.{r}"));
                }
            }
        }
    }
    out
}

/// aegistickets' backend pod in prod: the one with an init container this point added.
fn backend_pod() -> Value {
    let o = common::output("prod", "aegistickets");
    workloads(&o)
        .into_iter()
        .find(|(_, w)| w["metadata"]["name"] == "backend")
        .map(|(_, w)| w["spec"]["template"]["spec"].clone())
        .expect("the backend's Deployment")
}

#[test]
fn issue19_9_pods_with_init_containers_still_meet_the_restricted_profile() {
    let mut with_init = 0;
    for o in outputs() {
        for (at, w) in workloads(&o) {
            let pod = &w["spec"]["template"]["spec"];
            let violations = restricted_violations(pod);
            assert!(violations.is_empty(), "{at}: {violations:?}");
            with_init += usize::from(pod["initContainers"].is_array());
        }
    }
    // Backend and exporter in each of the three environments.
    assert!(with_init >= 6, "{with_init} pods with init containers");
}

#[test]
fn issue19_9_the_restricted_check_finds_a_loose_init_container() {
    let pod = backend_pod();
    assert_eq!(pod["initContainers"][0]["name"], "rds-ca");
    assert!(restricted_violations(&pod).is_empty());
    let loosen: [(&str, Value, &str); 5] = [
        (
            "allowPrivilegeEscalation",
            json!(true),
            "rds-ca: allowPrivilegeEscalation is not false",
        ),
        (
            "capabilities",
            json!({"add": ["NET_ADMIN"], "drop": ["ALL"]}),
            "rds-ca: adds a capability other than NET_BIND_SERVICE",
        ),
        (
            "runAsNonRoot",
            json!(false),
            "rds-ca: runAsNonRoot is not true",
        ),
        (
            "readOnlyRootFilesystem",
            json!(false),
            "rds-ca: root file system is writable",
        ),
        (
            "seccompProfile",
            json!({"type": "Unconfined"}),
            "rds-ca: seccomp is neither RuntimeDefault nor Localhost",
        ),
    ];
    for (field, value, says) in loosen {
        let mut bad = pod.clone();
        bad["initContainers"][0]["securityContext"][field] = value;
        assert_eq!(restricted_violations(&bad), [says], "{field}");
    }
    let mut bad = pod.clone();
    bad["initContainers"][0]
        .as_object_mut()
        .expect("container")
        .remove("resources");
    assert_eq!(
        restricted_violations(&bad).len(),
        4,
        "no requests or limits"
    );
    let mut bad = pod;
    bad["volumes"][0] = json!({"name": "host", "hostPath": {"path": "/"}});
    assert_eq!(restricted_violations(&bad).len(), 1);
}

/// The statements of the policy document a role's `assume_role_policy` names.
fn trust_of(o: &Output, role_name: &str) -> Vec<Value> {
    let all = resources(o);
    let role = all
        .iter()
        .find(|(t, _, b)| t == "aws_iam_role" && b["name"] == role_name)
        .map(|(_, _, b)| b.clone())
        .unwrap_or_else(|| panic!("{} {}: no role {role_name}", o.env, o.stack));
    let doc = role["assume_role_policy"]
        .as_str()
        .and_then(|r| r.strip_prefix("${data.aws_iam_policy_document."))
        .and_then(|r| r.strip_suffix(".json}"))
        .expect("a trust policy document");
    o.files
        .iter()
        .filter(|(p, _)| p.starts_with("terraform"))
        .find_map(|(_, body)| {
            let v: Value = serde_json::from_str(body).expect("JSON");
            v["data"]["aws_iam_policy_document"][doc]["statement"]
                .as_array()
                .cloned()
        })
        .unwrap_or_else(|| panic!("no policy document {doc}"))
}

/// Every SecretStore of a stack (`k8s/` and its jobs) as (path, store, its ServiceAccount).
fn stores(o: &Output) -> Vec<(String, Value, Value)> {
    let docs = k8s_docs(o);
    docs.iter()
        .filter(|(_, d)| d["kind"] == "SecretStore" || d["kind"] == "ClusterSecretStore")
        .map(|(path, store)| {
            let at = format!("{} {} {path}", o.env, o.stack);
            assert_eq!(store["kind"], "SecretStore", "{at}: a cluster-wide store");
            let aws = &store["spec"]["provider"]["aws"];
            assert!(
                aws.get("role").is_none(),
                "{at}: the store has the controller assume {}",
                aws["role"]
            );
            let sa = &aws["auth"]["jwt"]["serviceAccountRef"];
            assert!(
                sa["name"].is_string() && sa.get("namespace").is_none(),
                "{at}: the store does not authenticate as a ServiceAccount of its namespace"
            );
            let namespace = &store["metadata"]["namespace"];
            let account = docs
                .iter()
                .map(|(_, d)| d)
                .find(|d| {
                    d["kind"] == "ServiceAccount"
                        && d["metadata"]["namespace"] == *namespace
                        && d["metadata"]["name"] == sa["name"]
                })
                .unwrap_or_else(|| panic!("{at}: no ServiceAccount {}", sa["name"]))
                .clone();
            (at, store.clone(), account)
        })
        .collect()
}

#[test]
fn issue19_8_no_secret_store_is_authenticated_by_the_controllers_role() {
    let mut login_stores = 0;
    for o in outputs() {
        for (at, _, account) in stores(&o) {
            let role_arn = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
                .as_str()
                .unwrap_or_else(|| panic!("{at}: the store's ServiceAccount has no IRSA role"));
            let role_name = role_arn.rsplit_once(":role/").expect("a role ARN").1;
            // The role the ServiceAccount names exists in the stack's own root, and only a
            // web identity may assume it: no controller role, no other principal.
            for s in trust_of(&o, role_name) {
                assert_eq!(
                    s["actions"],
                    json!(["sts:AssumeRoleWithWebIdentity"]),
                    "{at}"
                );
                assert_eq!(s["principals"][0]["type"], "Federated", "{at}");
            }
            login_stores += usize::from(at.contains(" jobs/database-login/"));
        }
    }
    // aegistickets, analytics-api and whatsthecraic run their logins as Jobs, in three
    // environments.
    assert_eq!(login_stores, 9);
}

#[test]
fn issue19_8_the_login_reader_trusts_exactly_its_namespace_and_service_account() {
    let mut readers = 0;
    for o in outputs() {
        for (at, store, account) in stores(&o) {
            if !at.contains(" jobs/database-login/") {
                continue;
            }
            let subject = format!(
                "system:serviceaccount:{}:{}",
                store["metadata"]["namespace"].as_str().unwrap_or_default(),
                account["metadata"]["name"].as_str().unwrap_or_default()
            );
            let role_arn = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
                .as_str()
                .expect("an IRSA role");
            let trust = trust_of(&o, role_arn.rsplit_once(":role/").expect("a role ARN").1);
            assert_eq!(trust.len(), 1, "{at}: {trust:?}");
            let conditions: BTreeMap<String, Value> = trust[0]["condition"]
                .as_array()
                .expect("conditions")
                .iter()
                .map(|c| {
                    assert_eq!(c["test"], "StringEquals", "{at}: {c}");
                    let variable = c["variable"].as_str().expect("variable");
                    let key = variable.rsplit_once(':').expect("issuer:key").1;
                    (key.to_owned(), c["values"].clone())
                })
                .collect();
            assert_eq!(
                conditions,
                BTreeMap::from([
                    ("aud".to_owned(), json!(["sts.amazonaws.com"])),
                    ("sub".to_owned(), json!([subject])),
                ]),
                "{at}"
            );
            // And it reads the login's secrets, not the stack's prefix.
            assert!(
                role_arn.ends_with("-dblogin-secrets-reader"),
                "{at}: {role_arn}"
            );
            readers += 1;
        }
    }
    assert_eq!(readers, 9);
}
