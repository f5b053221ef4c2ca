//! `codedeploy_cannot_pass_task_roles`
//!
//! *What it does:* for every `aws_codedeploy_deployment_group` of an ECS service, follows
//! `ecs_service.service_name` to the `aws_ecs_service`, its `task_definition` to the
//! `aws_ecs_task_definition`, and reads the roles that names (`task_role_arn`,
//! `execution_role_arn`). It then reads what the group's `service_role_arn` role may pass:
//! `iam:PassRole` statements of its inline policies (`aws_iam_role_policy` over an
//! `aws_iam_policy_document`) and the managed `AWSCodeDeployRoleForECS` (which may pass any
//! role to ECS tasks). Each task role the role cannot pass to `ecs-tasks.amazonaws.com` is
//! a finding on the group.
//!
//! *Why is this bad:* CodeDeploy creates the replacement task set with the revision's task
//! definition, and ECS checks that the caller may pass its roles. The managed
//! `AWSCodeDeployRoleForECSLimited` passes only roles named `ecsTaskExecutionRole*`, so with
//! any other role every blue/green deployment fails at CreateTaskSet, after the apply that
//! registered the revision succeeded.
//!
//! *Example:* a group whose role has only `AWSCodeDeployRoleForECSLimited`, for a service
//! whose task definition names `aws_iam_role.task.arn`.
//!
//! *Use instead:* an inline statement allowing `iam:PassRole` on exactly the task and
//! execution roles, with `StringEquals iam:PassedToService = ecs-tasks.amazonaws.com`
//! (`construct::codedeploy` writes it from `EcsService::task_role_arns`).
//!
//! *References:* <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/codedeploy_IAM_role.html>

use serde_json::Value;

use super::super::{Finding, Rule};
use crate::refs::{self, BlockKind};
use crate::tf::Config;

/// The rule.
pub const RULE: Rule = Rule {
    name: "codedeploy_cannot_pass_task_roles",
    summary: "a CodeDeploy ECS role may pass the roles its service's task definition names",
    check,
};

/// The service principal the roles are passed to.
const ECS_TASKS: &str = "ecs-tasks.amazonaws.com";

/// The managed policy that passes any role to ECS tasks.
const FULL_MANAGED_POLICY: &str = ":policy/AWSCodeDeployRoleForECS";

/// First element of a Terraform JSON block list, or the value itself.
fn first(v: &Value) -> &Value {
    if v.is_array() { &v[0] } else { v }
}

/// The address of the block `attribute` of `text` refers to, if it is of type `ty`: for
/// `"${aws_ecs_service.app.name}"`, `("aws_ecs_service", ["name"])` gives
/// `aws_ecs_service.app`.
fn referenced(text: &str, ty: &str, attributes: &[&str]) -> Option<String> {
    refs::references(text).into_iter().find_map(|r| {
        attributes.iter().find_map(|a| {
            r.strip_suffix(&format!(".{a}"))
                .filter(|addr| addr.starts_with(&format!("{ty}.")))
                .map(str::to_owned)
        })
    })
}

/// What a role may pass to ECS tasks.
#[derive(Debug, Default)]
struct Passable {
    /// Any role (`*`, or the full managed policy).
    any: bool,
    /// Exactly these resource strings (references or literal ARNs).
    roles: Vec<String>,
}

impl Passable {
    fn covers(&self, role: &str) -> bool {
        self.any || self.roles.iter().any(|r| r == role)
    }
}

/// Whether a policy-document statement allows `iam:PassRole` to ECS tasks.
fn passes_to_ecs(statement: &Value) -> bool {
    if statement["effect"].as_str().is_some_and(|e| e != "Allow") {
        return false;
    }
    let actions: Vec<&str> = statement["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !actions
        .iter()
        .any(|a| matches!(*a, "iam:PassRole" | "iam:*" | "*"))
    {
        return false;
    }
    statement["condition"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["variable"] == "iam:PassedToService")
        .all(|c| {
            c["values"]
                .as_array()
                .is_some_and(|v| v.iter().any(|x| x == ECS_TASKS))
        })
}

/// What `role` (an `aws_iam_role` address) may pass, from the root's attachments and
/// inline policies.
fn passable(config: &Config, role: &str) -> Passable {
    let mut out = Passable::default();
    for (r, body) in config.blocks() {
        if r.kind() != BlockKind::Resource {
            continue;
        }
        let of_role = body["role"]
            .as_str()
            .and_then(|t| referenced(t, "aws_iam_role", &["id", "name"]))
            .is_some_and(|a| a == role);
        if !of_role {
            continue;
        }
        match r.ty() {
            "aws_iam_role_policy_attachment"
                if body["policy_arn"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(FULL_MANAGED_POLICY)) =>
            {
                out.any = true;
            }
            "aws_iam_role_policy" => {
                let Some(doc) = body["policy"]
                    .as_str()
                    .and_then(|t| referenced(t, "data.aws_iam_policy_document", &["json"]))
                else {
                    continue;
                };
                let statements = config
                    .body_at(&doc)
                    .and_then(|d| d["statement"].as_array())
                    .into_iter()
                    .flatten();
                for s in statements.filter(|s| passes_to_ecs(s)) {
                    for resource in s["resources"].as_array().into_iter().flatten() {
                        match resource.as_str() {
                            Some("*") => out.any = true,
                            Some(r) => out.roles.push(r.to_owned()),
                            None => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn check(config: &Config, out: &mut Vec<Finding>) {
    for (r, group) in config.blocks() {
        if r.kind() != BlockKind::Resource || r.ty() != "aws_codedeploy_deployment_group" {
            continue;
        }
        let Some(service) = first(&group["ecs_service"])["service_name"]
            .as_str()
            .and_then(|t| referenced(t, "aws_ecs_service", &["name", "id"]))
        else {
            continue;
        };
        let Some(task) = config
            .body_at(&service)
            .and_then(|s| s["task_definition"].as_str())
            .and_then(|t| {
                referenced(
                    t,
                    "aws_ecs_task_definition",
                    &["arn", "arn_without_revision", "family"],
                )
            })
        else {
            continue;
        };
        let Some(task_body) = config.body_at(&task) else {
            continue;
        };
        let Some(role) = group["service_role_arn"]
            .as_str()
            .and_then(|t| referenced(t, "aws_iam_role", &["arn"]))
        else {
            continue;
        };
        let can = passable(config, &role);
        for field in ["task_role_arn", "execution_role_arn"] {
            let Some(needed) = task_body[field].as_str() else {
                continue;
            };
            if !can.covers(needed) {
                let shown = refs::references(needed)
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| needed.to_owned());
                out.push(Finding {
                    rule: RULE.name,
                    address: r.address(),
                    message: format!(
                        "its role {role} cannot pass {shown} ({field} of {task}, which {service} runs): every blue/green deployment would fail at CreateTaskSet; allow iam:PassRole on exactly that role with iam:PassedToService = {ECS_TASKS}"
                    ),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::policy::check;
    use crate::refs::Ref;
    use crate::tf::Config;
    use crate::tf::tests::config;

    /// A role named `name` with the `managed` policy and the inline `statements`.
    fn role(c: &mut Config, name: &str, managed: &str, statements: serde_json::Value) -> Ref {
        let role = c.resource(
            "iam",
            "aws_iam_role",
            name,
            json!({"name": format!("acme-{name}"), "assume_role_policy": "{}"}),
        );
        c.resource(
            "iam",
            "aws_iam_role_policy_attachment",
            name,
            json!({"role": role.attr("name"), "policy_arn": format!("arn:aws:iam::aws:policy/{managed}")}),
        );
        if statements.as_array().is_some_and(|s| !s.is_empty()) {
            let doc = c.data(
                "iam",
                "aws_iam_policy_document",
                name,
                json!({ "statement": statements }),
            );
            c.resource(
                "iam",
                "aws_iam_role_policy",
                name,
                json!({"name": name, "role": role.id(), "policy": doc.attr("json")}),
            );
        }
        role
    }

    /// A service with task and execution roles, deployed by a group whose role is
    /// `codedeploy` (built by `deployer` from the task roles' ARNs).
    fn root(deployer: impl Fn(&mut Config, [String; 2]) -> Ref) -> Config {
        let mut c = config();
        let task = c.resource("iam", "aws_iam_role", "task", json!({"name": "acme-task"}));
        let exec = c.resource("iam", "aws_iam_role", "exec", json!({"name": "acme-exec"}));
        let def = c.resource(
            "ecs",
            "aws_ecs_task_definition",
            "app",
            json!({"family": "acme", "task_role_arn": task.arn(), "execution_role_arn": exec.arn()}),
        );
        let service = c.resource(
            "ecs",
            "aws_ecs_service",
            "app",
            json!({"name": "acme", "task_definition": def.arn()}),
        );
        let deployer_role = deployer(&mut c, [task.arn().to_string(), exec.arn().to_string()]);
        c.resource(
            "deploy",
            "aws_codedeploy_deployment_group",
            "main",
            json!({
                "app_name": "acme",
                "deployment_group_name": "acme",
                "service_role_arn": deployer_role.arn(),
                "ecs_service": [{"cluster_name": "acme", "service_name": service.attr("name")}],
            }),
        );
        c
    }

    fn pass(resources: &[String], to: &str) -> serde_json::Value {
        json!([{
            "sid": "PassTaskRolesToEcs",
            "effect": "Allow",
            "actions": ["iam:PassRole"],
            "resources": resources,
            "condition": [{"test": "StringEquals", "variable": "iam:PassedToService", "values": [to]}],
        }])
    }

    fn messages(c: &Config) -> Vec<String> {
        check(c)
            .into_iter()
            .filter(|f| f.rule == super::RULE.name)
            .map(|f| f.to_string())
            .collect()
    }

    /// Builds the CodeDeploy role of a case from the task roles' ARNs.
    type Deployer = fn(&mut Config, [String; 2]) -> Ref;

    #[test]
    fn a_codedeploy_role_must_pass_exactly_the_task_roles_to_ecs_tasks() {
        let cases: [(&str, Deployer, usize); 5] = [
            (
                "limited policy only",
                |c, _| role(c, "codedeploy", "AWSCodeDeployRoleForECSLimited", json!([])),
                2,
            ),
            (
                "execution role missing",
                |c, [task, _]| {
                    role(
                        c,
                        "codedeploy",
                        "AWSCodeDeployRoleForECSLimited",
                        pass(&[task], "ecs-tasks.amazonaws.com"),
                    )
                },
                1,
            ),
            (
                "passed to another service",
                |c, roles| {
                    role(
                        c,
                        "codedeploy",
                        "AWSCodeDeployRoleForECSLimited",
                        pass(&roles, "lambda.amazonaws.com"),
                    )
                },
                2,
            ),
            (
                "exactly the task roles, to ECS tasks",
                |c, roles| {
                    role(
                        c,
                        "codedeploy",
                        "AWSCodeDeployRoleForECSLimited",
                        pass(&roles, "ecs-tasks.amazonaws.com"),
                    )
                },
                0,
            ),
            (
                "the full managed policy",
                |c, _| role(c, "codedeploy", "AWSCodeDeployRoleForECS", json!([])),
                0,
            ),
        ];
        for (case, deployer, findings) in cases {
            let found = messages(&root(deployer));
            assert_eq!(found.len(), findings, "{case}: {found:#?}");
        }
    }

    #[test]
    fn the_finding_names_the_role_the_task_definition_and_the_fix() {
        let c = root(|c, _| role(c, "codedeploy", "AWSCodeDeployRoleForECSLimited", json!([])));
        insta::assert_snapshot!(messages(&c).join("\n"), @r"
        policy codedeploy_cannot_pass_task_roles: aws_codedeploy_deployment_group.main: its role aws_iam_role.codedeploy cannot pass aws_iam_role.task.arn (task_role_arn of aws_ecs_task_definition.app, which aws_ecs_service.app runs): every blue/green deployment would fail at CreateTaskSet; allow iam:PassRole on exactly that role with iam:PassedToService = ecs-tasks.amazonaws.com
        policy codedeploy_cannot_pass_task_roles: aws_codedeploy_deployment_group.main: its role aws_iam_role.codedeploy cannot pass aws_iam_role.exec.arn (execution_role_arn of aws_ecs_task_definition.app, which aws_ecs_service.app runs): every blue/green deployment would fail at CreateTaskSet; allow iam:PassRole on exactly that role with iam:PassedToService = ecs-tasks.amazonaws.com
        ");
    }
}
