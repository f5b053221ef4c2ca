//! IAM roles with least-privilege policies written as `aws_iam_policy_document` data
//! sources, so the PR diff shows each statement as data rather than an escaped string.

use serde_json::{Value, json};

use super::{Scope, local_name};
use crate::refs::{Expr, Ref};

/// One policy statement (always `Allow`).
#[derive(Debug, Clone)]
pub struct Statement {
    /// Statement id, shown in the policy.
    pub sid: String,
    /// Actions, e.g. `secretsmanager:GetSecretValue`.
    pub actions: Vec<String>,
    /// Resource ARNs (literals or references). Never `*` together with a `*` action.
    pub resources: Vec<String>,
    /// Conditions as (test, variable, values).
    pub conditions: Vec<(String, String, Vec<String>)>,
}

impl Statement {
    /// Allows `actions` on `resources`.
    pub fn allow(sid: &str, actions: &[&str], resources: Vec<String>) -> Self {
        Statement {
            sid: sid.to_owned(),
            actions: actions.iter().map(|s| (*s).to_owned()).collect(),
            resources,
            conditions: Vec::new(),
        }
    }

    /// Adds a condition.
    pub fn when(mut self, test: &str, variable: &str, values: Vec<String>) -> Self {
        self.conditions
            .push((test.to_owned(), variable.to_owned(), values));
        self
    }

    fn to_json(&self) -> Value {
        let mut s = json!({
            "sid": self.sid,
            "effect": "Allow",
            "actions": self.actions,
            "resources": self.resources,
        });
        if !self.conditions.is_empty() {
            s["condition"] = conditions(&self.conditions);
        }
        s
    }
}

fn conditions(list: &[(String, String, Vec<String>)]) -> Value {
    Value::Array(
        list.iter()
            .map(|(test, variable, values)| json!({"test": test, "variable": variable, "values": values}))
            .collect(),
    )
}

/// Who may assume a role.
#[derive(Debug, Clone)]
pub enum Trust {
    /// An AWS service principal, e.g. `ecs-tasks.amazonaws.com`, limited to this account
    /// (`aws:SourceAccount`) to prevent the confused-deputy problem.
    Service(&'static str),
}

/// An IAM role with managed and inline policies.
#[derive(Debug, Clone)]
pub struct Role {
    role: Ref,
}

impl Role {
    /// Creates `aws_iam_role.<id>` named `<prefix>-<suffix>` in `iam.tf.json`, trusted by `trust`,
    /// with the given AWS managed policies (by path) and inline statements.
    pub fn new(
        scope: &mut Scope<'_>,
        id: &str,
        suffix: &str,
        trust: Trust,
        managed: &[&str],
        statements: Vec<Statement>,
    ) -> Role {
        let id = local_name(id);
        let account = scope.tf.account_id().to_owned();
        let trust_doc = match trust {
            Trust::Service(principal) => json!({
                "statement": [{
                    "sid": "AssumeFromService",
                    "effect": "Allow",
                    "actions": ["sts:AssumeRole"],
                    "principals": [{"type": "Service", "identifiers": [principal]}],
                    "condition": conditions(&[(
                        "StringEquals".into(),
                        "aws:SourceAccount".into(),
                        vec![account],
                    )]),
                }]
            }),
        };
        let trust_ref = scope.tf.data(
            "iam",
            "aws_iam_policy_document",
            &format!("{id}_trust"),
            trust_doc,
        );
        let name = scope.name(suffix);
        let role = scope.tf.resource(
            "iam",
            "aws_iam_role",
            &id,
            json!({
                "name": name,
                "assume_role_policy": trust_ref.attr("json"),
                "max_session_duration": 3600,
            }),
        );
        for path in managed {
            let attach_id = format!(
                "{id}_{}",
                local_name(path.rsplit('/').next().unwrap_or(path))
            );
            let arn = scope.managed_policy(path);
            scope.tf.resource(
                "iam",
                "aws_iam_role_policy_attachment",
                &attach_id,
                json!({"role": role.attr("name"), "policy_arn": arn}),
            );
        }
        if !statements.is_empty() {
            let doc =
                json!({"statement": statements.iter().map(Statement::to_json).collect::<Vec<_>>()});
            let doc_ref = scope.tf.data("iam", "aws_iam_policy_document", &id, doc);
            scope.tf.resource(
                "iam",
                "aws_iam_role_policy",
                &id,
                json!({"name": name, "role": role.id(), "policy": doc_ref.attr("json")}),
            );
        }
        Role { role }
    }

    /// The role's ARN.
    pub fn arn(&self) -> Expr {
        self.role.arn()
    }

    /// The role's name.
    pub fn name(&self) -> Expr {
        self.role.attr("name")
    }

    /// The role's Terraform address, for `depends_on`.
    pub fn address(&self) -> String {
        self.role.address()
    }
}
