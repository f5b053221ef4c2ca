//! `keel drift ENV [--stack NAME]`: what changed in the cloud since the last apply, per
//! stack. Terraform: `terraform plan -refresh-only -detailed-exitcode` in each root under
//! `generated/<env>/`, read back with `terraform show -json`; each drifted resource's state
//! before and after the refresh is compared and classified with `keel diff`'s classes
//! ([`crate::diff::classify`]: replace risk, security, other). Kubernetes: a server-side
//! `kubectl diff` of each `k8s/` folder, read as unified diffs.
//!
//! Reads only: the plan is saved to a temporary file, never applied.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::diff::{self, Kind, Object, Parsed, StackDiff};
use crate::error::Error;

use super::Project;

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Environment.
    pub env: String,
    /// Only this stack.
    pub stack: Option<String>,
    /// Also run `kubectl diff --server-side` on each `k8s/` folder.
    pub kubernetes: bool,
}

/// Attributes compared even when the configuration does not set them: what someone can
/// open by hand (rules of a security group, policies of a role) and the tags. A security
/// group's `ingress`/`egress` and a role's `managed_policy_arns` also list what the root's
/// own rule and attachment resources add: those are taken out ([`Managed`]), so what is
/// left is what no Terraform resource manages.
const ALWAYS: &[&str] = &[
    "ingress",
    "egress",
    "policy",
    "assume_role_policy",
    "managed_policy_arns",
    "tags",
];

/// The drift of one Terraform plan document (`terraform show -json` of a refresh-only plan):
/// one change per drifted resource, classified as `keel diff` classifies an edit. Only the
/// attributes the configuration sets (`configuration.root_module`) and those of [`ALWAYS`]
/// are compared, so values AWS computes (timestamps, defaults read back) are not drift; an
/// absent value and an empty one are the same.
pub fn from_plan(env: &str, stack: &str, plan: &Value) -> StackDiff {
    let mut configured: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in plan
        .pointer("/configuration/root_module/resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(address), Some(expressions)) =
            (r["address"].as_str(), r["expressions"].as_object())
        {
            configured.insert(address, expressions.keys().map(String::as_str).collect());
        }
    }
    let managed = Managed::of(plan);
    let mut before = Parsed::default();
    let mut after = Parsed::default();
    for d in plan["resource_drift"].as_array().into_iter().flatten() {
        if d["mode"] != "managed" {
            continue;
        }
        let (Some(address), Some(rtype)) = (d["address"].as_str(), d["type"].as_str()) else {
            continue;
        };
        // `aws_x.y[0]` is configured as `aws_x.y`.
        let keys = configured.get(address.split('[').next().unwrap_or(address));
        let object = |body: &Value| Object {
            kind: Kind::Terraform,
            rtype: rtype.to_owned(),
            body: compared(&managed.remove_from(rtype, body), keys),
        };
        let change = &d["change"];
        if !change["before"].is_null() {
            before
                .objects
                .insert(address.to_owned(), object(&change["before"]));
        }
        if !change["after"].is_null() {
            after
                .objects
                .insert(address.to_owned(), object(&change["after"]));
        }
    }
    let mut out = diff::diff_parsed(env, stack, &before, &after);
    // A resource gone from the cloud shows as a delete: say so in the drift's words.
    for c in &mut out.changes {
        if c.action == diff::Action::Delete {
            c.reasons
                .push("deleted outside Terraform: the next apply creates it again".into());
        }
    }
    out.cost = None;
    out
}

/// What the root's own resources add to other resources' state: security group rules
/// (`aws_vpc_security_group_*_rule`) and role policy attachments.
#[derive(Debug, Default)]
struct Managed {
    /// (security group id, `ingress`/`egress`, protocol, from port, to port, source).
    rules: BTreeSet<(String, &'static str, String, i64, i64, String)>,
    /// (role name, policy ARN).
    attachments: BTreeSet<(String, String)>,
}

impl Managed {
    /// From the plan's prior state (the state as of the last apply).
    fn of(plan: &Value) -> Managed {
        let mut m = Managed::default();
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        for r in plan
            .pointer("/prior_state/values/root_module/resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let v = &r["values"];
            let direction = match r["type"].as_str() {
                Some("aws_vpc_security_group_ingress_rule") => "ingress",
                Some("aws_vpc_security_group_egress_rule") => "egress",
                Some("aws_iam_role_policy_attachment") => {
                    m.attachments
                        .insert((text(&v["role"]), text(&v["policy_arn"])));
                    continue;
                }
                _ => continue,
            };
            let source = [
                "cidr_ipv4",
                "cidr_ipv6",
                "referenced_security_group_id",
                "prefix_list_id",
            ]
            .iter()
            .find_map(|k| v[*k].as_str())
            .unwrap_or_default()
            .to_owned();
            let protocol = text(&v["ip_protocol"]);
            // A rule for all protocols has no ports; inline rules say 0..0.
            let port = |k: &str| v[k].as_i64().unwrap_or(0);
            let (from, to) = if protocol == "-1" {
                (0, 0)
            } else {
                (port("from_port"), port("to_port"))
            };
            m.rules.insert((
                text(&v["security_group_id"]),
                direction,
                protocol,
                from,
                to,
                source,
            ));
        }
        m
    }

    /// `body` without what the root's own rules and attachments put there.
    fn remove_from(&self, rtype: &str, body: &Value) -> Value {
        let mut body = body.clone();
        match rtype {
            "aws_security_group" => {
                let id = body["id"].as_str().unwrap_or_default().to_owned();
                for direction in ["ingress", "egress"] {
                    if let Some(list) = body.get_mut(direction).and_then(Value::as_array_mut) {
                        let kept: Vec<Value> = list
                            .iter()
                            .filter_map(|rule| self.unmanaged_part(&id, direction, rule))
                            .collect();
                        *list = kept;
                    }
                }
            }
            "aws_iam_role" => {
                let role = body["name"].as_str().unwrap_or_default().to_owned();
                if let Some(list) = body
                    .get_mut("managed_policy_arns")
                    .and_then(Value::as_array_mut)
                {
                    list.retain(|arn| {
                        !self
                            .attachments
                            .contains(&(role.clone(), arn.as_str().unwrap_or_default().to_owned()))
                    });
                }
            }
            _ => {}
        }
        body
    }

    /// An inline rule of a security group's state without the sources a rule resource of the
    /// root manages; `None` when nothing is left.
    fn unmanaged_part(&self, sg: &str, direction: &'static str, rule: &Value) -> Option<Value> {
        let protocol = rule["protocol"].as_str().unwrap_or_default().to_owned();
        let port = |k: &str| rule[k].as_i64().unwrap_or(0);
        let (from, to) = if protocol == "-1" {
            (0, 0)
        } else {
            (port("from_port"), port("to_port"))
        };
        let mut rule = rule.clone();
        let mut left = 0;
        for key in [
            "cidr_blocks",
            "ipv6_cidr_blocks",
            "security_groups",
            "prefix_list_ids",
        ] {
            if let Some(list) = rule.get_mut(key).and_then(Value::as_array_mut) {
                list.retain(|source| {
                    let source = source.as_str().unwrap_or_default().to_owned();
                    !self.rules.contains(&(
                        sg.to_owned(),
                        direction,
                        protocol.clone(),
                        from,
                        to,
                        source,
                    ))
                });
                left += list.len();
            }
        }
        (left > 0 || rule["self"] == Value::Bool(true)).then_some(rule)
    }
}

/// The attributes of a state `body` that drift compares (see [`from_plan`]); `tags_all`
/// is left out, since it repeats `tags` (a tag changed by hand would count twice).
fn compared(body: &Value, configured: Option<&BTreeSet<&str>>) -> Value {
    let Some(map) = body.as_object() else {
        return body.clone();
    };
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    };
    Value::Object(
        map.iter()
            .filter(|(k, v)| {
                k.as_str() != "tags_all"
                    && (ALWAYS.contains(&k.as_str())
                        || configured.is_none_or(|c| c.contains(k.as_str())))
                    && !empty(v)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// Objects that differ in a `kubectl diff` output (unified diffs between
/// `/tmp/LIVE-*/<group>.<version>.<Kind>.<namespace>.<name>` and `/tmp/MERGED-*/...`), with
/// the lines that differ. Pure, for canned output.
pub fn from_kubectl_diff(env: &str, stack: &str, output: &str) -> StackDiff {
    let mut changes = Vec::new();
    let mut current: Option<(String, String, Vec<String>)> = None;
    let flush = |current: &mut Option<(String, String, Vec<String>)>,
                 changes: &mut Vec<diff::Change>| {
        if let Some((address, kind, lines)) = current.take() {
            changes.push(kubernetes_change(address, kind, lines));
        }
    };
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("diff -u -N ") {
            flush(&mut current, &mut changes);
            let live = rest.split_whitespace().next().unwrap_or_default();
            let file = live.rsplit('/').next().unwrap_or_default();
            current = Some(kubernetes_address(file));
        } else if let Some((_, _, lines)) = current.as_mut()
            && (line.starts_with('+') || line.starts_with('-'))
            && !line.starts_with("+++")
            && !line.starts_with("---")
        {
            lines.push(line.to_owned());
        }
    }
    flush(&mut current, &mut changes);
    diff::sort_changes(&mut changes);
    StackDiff {
        env: env.to_owned(),
        stack: stack.to_owned(),
        changes,
        cost: None,
    }
}

/// `apps.v1.Deployment.analytics.api` → (`Deployment/analytics/api`, `Deployment`).
fn kubernetes_address(file: &str) -> (String, String, Vec<String>) {
    let parts: Vec<&str> = file.split('.').collect();
    // group (possibly dotted or empty) . version . Kind . namespace . name, or without
    // namespace for cluster-scoped objects: the Kind is the part that starts upper-case.
    let Some(k) = parts
        .iter()
        .position(|p| p.chars().next().is_some_and(char::is_uppercase))
    else {
        return (file.to_owned(), String::new(), Vec::new());
    };
    let kind = parts[k].to_owned();
    let rest = &parts[k + 1..];
    let address = match rest {
        [name] => format!("{kind}/{name}"),
        [ns, name @ ..] => format!("{kind}/{ns}/{}", name.join(".")),
        [] => kind.clone(),
    };
    (address, kind, Vec::new())
}

fn kubernetes_change(address: String, kind: String, lines: Vec<String>) -> diff::Change {
    let before: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix('-')).collect();
    let after: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix('+')).collect();
    let parse = |text: &[&str]| -> Value {
        serde_saphyr::from_str::<Value>(&text.join("\n"))
            .unwrap_or_else(|_| Value::String(text.join("\n")))
    };
    let object = Object {
        kind: Kind::Kubernetes,
        rtype: kind.clone(),
        body: parse(&after),
    };
    let mut parsed_before = Parsed::default();
    let mut parsed_after = Parsed::default();
    parsed_before.objects.insert(
        address.clone(),
        Object {
            body: parse(&before),
            ..object.clone()
        },
    );
    parsed_after.objects.insert(address.clone(), object);
    let mut d = diff::diff_parsed("", "", &parsed_before, &parsed_after);
    d.changes.pop().unwrap_or_else(|| diff::Change {
        address,
        kind: Kind::Kubernetes,
        rtype: kind,
        action: diff::Action::Update,
        class: diff::Class::Other,
        cosmetic: false,
        reasons: vec!["the live object differs from the committed one".into()],
        attributes: Vec::new(),
    })
}

/// The Terraform roots (and `k8s/` folders) of the request, as (stack, folder).
fn folders(
    project: &Project,
    request: &Request,
    sub: &str,
) -> Result<Vec<(String, PathBuf)>, Error> {
    let env_dir = project.generated_dir().join(&request.env);
    project.refuse_outside(&env_dir, "generated/")?;
    let mut stacks: Vec<String> = std::fs::read_dir(&env_dir)
        .map_err(|e| {
            Error::Usage(format!(
                "cannot list generated/{}: {e} (run `keel synth {}` first)",
                request.env, request.env
            ))
        })?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(sub).is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect();
    stacks.sort();
    if let Some(only) = &request.stack {
        if !stacks.contains(only) {
            return Err(Error::Usage(format!(
                "no stack {only:?} with {sub}/ in generated/{}: expected one of {}",
                request.env,
                stacks.join(", ")
            )));
        }
        stacks.retain(|s| s == only);
    }
    Ok(stacks
        .into_iter()
        .map(|s| {
            let dir = env_dir.join(&s).join(sub);
            (s, dir)
        })
        .collect())
}

/// Runs a command; its stdout, or an error with its stderr's last lines.
fn run(cmd: &mut Command, what: &str, ok: &[i32]) -> Result<(i32, String), Error> {
    let out = cmd
        .output()
        .map_err(|e| Error::Usage(format!("cannot run {what}: {e}")))?;
    let code = out.status.code().unwrap_or(-1);
    if !ok.contains(&code) {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        return Err(Error::Step(format!(
            "{what} failed (exit {code}):\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    Ok((code, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// The drift of one Terraform root: init, refresh-only plan, show -json.
fn terraform_root(env: &str, stack: &str, dir: &Path) -> Result<StackDiff, Error> {
    let terraform = std::env::var("TERRAFORM").unwrap_or_else(|_| "terraform".into());
    let tf = |args: &[&str]| {
        let mut c = Command::new(&terraform);
        c.arg(format!("-chdir={}", dir.display())).args(args);
        c
    };
    let what = |cmd: &str| format!("terraform {cmd} in generated/{env}/{stack}/terraform");
    run(
        &mut tf(&["init", "-input=false", "-no-color"]),
        &what("init"),
        &[0],
    )?;
    // The saved plan holds refreshed attribute values: outside the project, removed after.
    let plan = std::env::temp_dir().join(format!(
        "keel-drift-{}-{env}-{stack}.tfplan",
        std::process::id()
    ));
    let result = refresh_only(&tf, &what, &plan, env, stack);
    let _ = std::fs::remove_file(&plan);
    result
}

/// The refresh-only plan into `plan`, read back as JSON.
fn refresh_only(
    tf: &dyn Fn(&[&str]) -> Command,
    what: &dyn Fn(&str) -> String,
    plan: &Path,
    env: &str,
    stack: &str,
) -> Result<StackDiff, Error> {
    let out = format!("-out={}", plan.display());
    // -detailed-exitcode: 0 no drift, 2 drift; -lock=false: a read-only role cannot lock.
    let (code, _) = run(
        &mut tf(&[
            "plan",
            "-refresh-only",
            "-detailed-exitcode",
            "-input=false",
            "-lock=false",
            "-no-color",
            &out,
        ]),
        &what("plan -refresh-only"),
        &[0, 2],
    )?;
    if code == 0 {
        return Ok(from_plan(env, stack, &Value::Null));
    }
    let plan_arg = plan.display().to_string();
    let (_, json) = run(
        &mut tf(&["show", "-json", &plan_arg]),
        &what("show -json"),
        &[0],
    )?;
    let doc: Value = serde_json::from_str(&json)
        .map_err(|e| Error::Internal(anyhow::anyhow!("terraform show -json: {e}")))?;
    Ok(from_plan(env, stack, &doc))
}

/// The drift of one `k8s/` folder: `kubectl diff --server-side -k DIR` (exit 1 = differs).
fn kubernetes_folder(env: &str, stack: &str, dir: &Path) -> Result<StackDiff, Error> {
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let (_, out) = run(
        Command::new(kubectl)
            .args(["diff", "--server-side", "-k"])
            .arg(dir),
        &format!("kubectl diff in generated/{env}/{stack}/k8s"),
        &[0, 1],
    )?;
    Ok(from_kubectl_diff(env, &format!("{stack} (k8s)"), &out))
}

/// Checks every selected root (and `k8s/` folder with `kubernetes`), one diff each.
pub fn drift(project: &Project, request: &Request) -> Result<Vec<StackDiff>, Error> {
    project.select(std::slice::from_ref(&request.env))?;
    let mut out = Vec::new();
    for (stack, dir) in folders(project, request, "terraform")? {
        out.push(terraform_root(&request.env, &stack, &dir)?);
    }
    if request.kubernetes {
        for (stack, dir) in folders(project, request, "k8s")? {
            out.push(kubernetes_folder(&request.env, &stack, &dir)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::diff::Class;

    fn drifted(address: &str, rtype: &str, before: Value, after: Value) -> Value {
        json!({"address": address, "mode": "managed", "type": rtype, "name": "x",
               "change": {"actions": ["update"], "before": before, "after": after}})
    }

    #[test]
    fn an_opened_security_group_is_security_a_tag_is_cosmetic() {
        let plan = json!({"resource_drift": [
            drifted("aws_security_group.database", "aws_security_group",
                json!({"name": "db", "ingress": []}),
                json!({"name": "db", "ingress": [{"cidr_blocks": ["0.0.0.0/0"], "from_port": 5432, "to_port": 5432, "protocol": "tcp"}]})),
            drifted("aws_vpc.main", "aws_vpc",
                json!({"tags": {"Name": "v"}, "tags_all": {"Name": "v"}}),
                json!({"tags": {"Name": "v", "Owner": "x"}, "tags_all": {"Name": "v", "Owner": "x"}})),
            drifted("aws_db_instance.main", "aws_db_instance",
                json!({"backup_retention_period": 7}), json!({"backup_retention_period": 3})),
        ]});
        let d = from_plan("dev", "app", &plan);
        let class = |a: &str| {
            let c = d
                .changes
                .iter()
                .find(|c| c.address == a)
                .unwrap_or_else(|| panic!("{a}"));
            (c.class, c.cosmetic, c.attributes.len())
        };
        assert_eq!(class("aws_security_group.database").0, Class::Security);
        assert_eq!(class("aws_vpc.main"), (Class::Other, true, 1));
        assert_eq!(class("aws_db_instance.main"), (Class::Other, false, 1));
        assert_eq!(d.changes[0].address, "aws_security_group.database");
        assert!(from_plan("dev", "app", &Value::Null).changes.is_empty());
    }

    #[test]
    fn computed_values_and_empty_for_absent_are_not_drift() {
        let plan = json!({
        "configuration": {"root_module": {"resources": [
            {"address": "aws_db_instance.main", "expressions": {"backup_retention_period": {}, "tags": {}}}
        ]}},
        "resource_drift": [
            drifted("aws_db_instance.main", "aws_db_instance",
                json!({"backup_retention_period": 7, "latest_restorable_time": "a", "tags": null, "domain_dns_ips": null}),
                json!({"backup_retention_period": 7, "latest_restorable_time": "b", "tags": {}, "domain_dns_ips": []})),
            drifted("aws_iam_role.r", "aws_iam_role",
                json!({"managed_policy_arns": []}),
                json!({"managed_policy_arns": ["arn:aws:iam::aws:policy/AdministratorAccess"]})),
        ]});
        let d = from_plan("dev", "app", &plan);
        let addresses: Vec<&str> = d.changes.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(addresses, ["aws_iam_role.r"], "{:#?}", d.changes);
    }

    #[test]
    fn rules_and_attachments_of_the_root_are_not_drift_of_their_group_or_role() {
        let rule = |cidr: &str| {
            json!({"cidr_blocks": [cidr], "ipv6_cidr_blocks": [], "security_groups": [], "prefix_list_ids": [],
                   "from_port": 443, "to_port": 443, "protocol": "tcp", "self": false})
        };
        let plan = json!({
        "prior_state": {"values": {"root_module": {"resources": [
            {"type": "aws_vpc_security_group_ingress_rule", "values": {
                "security_group_id": "sg-1", "ip_protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_ipv4": "10.0.0.0/8"}},
            {"type": "aws_iam_role_policy_attachment", "values": {"role": "r", "policy_arn": "arn:aws:iam::aws:policy/Mine"}}
        ]}}},
        "resource_drift": [
            drifted("aws_security_group.web", "aws_security_group",
                json!({"id": "sg-1", "ingress": []}),
                json!({"id": "sg-1", "ingress": [rule("10.0.0.0/8")]})),
            drifted("aws_security_group.db", "aws_security_group",
                json!({"id": "sg-1", "ingress": []}),
                json!({"id": "sg-1", "ingress": [rule("10.0.0.0/8"), rule("0.0.0.0/0")]})),
            drifted("aws_iam_role.r", "aws_iam_role",
                json!({"name": "r", "managed_policy_arns": []}),
                json!({"name": "r", "managed_policy_arns": ["arn:aws:iam::aws:policy/Mine"]})),
        ]});
        let d = from_plan("dev", "app", &plan);
        let addresses: Vec<&str> = d.changes.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(addresses, ["aws_security_group.db"], "{:#?}", d.changes);
        assert_eq!(d.changes[0].class, Class::Security);
    }

    #[test]
    fn a_resource_deleted_outside_terraform_says_so() {
        let plan = json!({"resource_drift": [
            {"address": "aws_kms_key.main", "mode": "managed", "type": "aws_kms_key",
             "change": {"actions": ["delete"], "before": {"id": "k"}, "after": null}}]});
        let d = from_plan("dev", "app", &plan);
        assert_eq!(d.changes.len(), 1);
        assert_eq!(d.changes[0].class, Class::Replace);
        assert!(
            d.changes[0]
                .reasons
                .iter()
                .any(|r| r.contains("deleted outside Terraform"))
        );
    }

    #[test]
    fn kubectl_diff_output_is_read_per_object() {
        let out = "\
diff -u -N /tmp/LIVE-1/apps.v1.Deployment.analytics.analytics-api /tmp/MERGED-2/apps.v1.Deployment.analytics.analytics-api
--- /tmp/LIVE-1/apps.v1.Deployment.analytics.analytics-api\t2026-01-01
+++ /tmp/MERGED-2/apps.v1.Deployment.analytics.analytics-api\t2026-01-01
@@ -6,7 +6,7 @@
-  replicas: 5
+  replicas: 2
diff -u -N /tmp/LIVE-1/networking.k8s.io.v1.NetworkPolicy.analytics.default-deny /tmp/MERGED-2/networking.k8s.io.v1.NetworkPolicy.analytics.default-deny
--- /tmp/LIVE-1/networking.k8s.io.v1.NetworkPolicy.analytics.default-deny\t2026-01-01
+++ /tmp/MERGED-2/networking.k8s.io.v1.NetworkPolicy.analytics.default-deny\t2026-01-01
@@ -0,0 +1,3 @@
+spec:
+  podSelector: {}
diff -u -N /tmp/LIVE-1/v1.Namespace.analytics /tmp/MERGED-2/v1.Namespace.analytics
@@ -1 +1 @@
-  team: x
+  team: y
";
        let d = from_kubectl_diff("prod", "analytics-api (k8s)", out);
        let mut addresses: Vec<&str> = d.changes.iter().map(|c| c.address.as_str()).collect();
        addresses.sort_unstable();
        assert_eq!(
            addresses,
            [
                "Deployment/analytics/analytics-api",
                "Namespace/analytics",
                "NetworkPolicy/analytics/default-deny"
            ]
        );
        let deploy = d
            .changes
            .iter()
            .find(|c| c.rtype == "Deployment")
            .unwrap_or_else(|| unreachable!("listed above"));
        assert_eq!(deploy.rtype, "Deployment");
        assert_eq!(deploy.attributes[0].path, "replicas");
        assert!(from_kubectl_diff("prod", "x", "").changes.is_empty());
    }
}
