//! The plan for people (text) and for the deploy workflow (JSON).

use std::fmt::Write;

use serde::Serialize;

use super::build::{Command, Kind, Plan, Step};
use super::{Reach, Wait};

/// What the deploy workflow runs, grouped the way its jobs are: Terraform roots layer by
/// layer (each layer a matrix, planned, approved, applied), then every other step in order
/// on one runner inside the VPC.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workflow {
    /// Stack names whose Terraform roots form each layer.
    pub terraform: Vec<Vec<String>>,
    /// The other steps' ids, in plan order.
    pub cluster: Vec<String>,
    /// The CodeBuild project whose runners run the cluster steps.
    pub runner: Option<String>,
}

/// Tool releases the cluster steps need.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tools {
    /// `kubectl`, matching the cluster's minor version.
    pub kubectl: Option<String>,
    /// `helm`.
    pub helm: &'static str,
}

#[derive(Serialize)]
struct Document<'a> {
    env: &'a str,
    layers: Vec<Vec<&'a str>>,
    steps: &'a [Step],
    workflow: Workflow,
    tools: Tools,
}

impl Plan {
    /// The workflow's grouping of the steps.
    pub fn workflow(&self) -> Workflow {
        let mut terraform: Vec<Vec<String>> = Vec::new();
        for s in self.steps.iter().filter(|s| s.kind == Kind::Terraform) {
            // Terraform steps need only Terraform steps, so their layers are consecutive
            // from 1.
            let i = s.layer.saturating_sub(1);
            if terraform.len() <= i {
                terraform.resize(i + 1, Vec::new());
            }
            terraform[i].push(s.stack.clone());
        }
        terraform.retain(|l| !l.is_empty());
        Workflow {
            terraform,
            cluster: self
                .steps
                .iter()
                .filter(|s| s.kind != Kind::Terraform)
                .map(|s| s.id.clone())
                .collect(),
            runner: self.runner.clone(),
        }
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let doc = Document {
            env: &self.env,
            layers: self.layers(),
            steps: &self.steps,
            workflow: self.workflow(),
            tools: Tools {
                kubectl: self.kubectl.clone(),
                helm: super::build::HELM_VERSION,
            },
        };
        // Plain data of strings, numbers and lists: serializing cannot fail.
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The plan as text: layer by layer, each step with what it comes after and why, its
    /// commands and its waits.
    pub fn to_text(&self) -> String {
        let layers = self.layers();
        let count = |k: Kind| self.steps.iter().filter(|s| s.kind == k).count();
        let mut out = format!(
            "keel plan {}: {} steps in {} layers ({} Terraform roots, {} add-on installs, {} jobs, {} Kubernetes applies, {} restarts)\n",
            self.env,
            self.steps.len(),
            layers.len(),
            count(Kind::Terraform),
            count(Kind::Install),
            count(Kind::Job),
            count(Kind::Apply),
            count(Kind::Restart),
        );
        let mut current = 0;
        // Multi-line arguments (the scripts `sh -c` runs) are printed once, after the
        // steps, and named where they are used.
        let mut scripts: Vec<&str> = Vec::new();
        for s in &self.steps {
            if s.layer != current {
                current = s.layer;
                let _ = write!(out, "\nlayer {current}\n");
            }
            let reach = match s.reach {
                Reach::AwsApi => "AWS API",
                Reach::Vpc => "inside the VPC",
            };
            let _ = writeln!(out, "  {} — {} [{reach}]", s.id, s.description);
            for need in &s.requires {
                let _ = writeln!(out, "      after {}: {}", need.from, need.capability);
            }
            for (label, commands) in [("plan", &s.plan), ("run", &s.run)] {
                for (i, c) in commands.iter().enumerate() {
                    let head = if i == 0 { label } else { "" };
                    let _ = writeln!(
                        out,
                        "      {head:<5} {}",
                        words_naming_scripts(c, &mut scripts)
                    );
                }
            }
            for w in &s.waits {
                let _ = writeln!(out, "      waits {}", describe(w));
            }
            if !s.provides.is_empty() {
                let gives: Vec<String> = s.provides.iter().map(ToString::to_string).collect();
                let _ = writeln!(out, "      gives {}", gives.join("; "));
            }
        }
        if !scripts.is_empty() {
            out.push_str("\nscripts (each `<script N>` above is this text, one argument)\n");
            for (i, script) in scripts.iter().enumerate() {
                let _ = writeln!(out, "\n  <script {}>", i + 1);
                for line in script.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
        out
    }
}

/// [`shell_words`] of `command`, with each multi-line argument shown as `<script N>`, its
/// number in `scripts` (added there when new).
fn words_naming_scripts<'a>(command: &'a Command, scripts: &mut Vec<&'a str>) -> String {
    command
        .iter()
        .map(|a| {
            if !a.contains('\n') {
                return shell_word(a);
            }
            let n = match scripts.iter().position(|s| *s == a.as_str()) {
                Some(i) => i + 1,
                None => {
                    scripts.push(a);
                    scripts.len()
                }
            };
            format!("<script {n}>")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn describe(wait: &Wait) -> String {
    match wait {
        Wait::CrdEstablished(c) => format!("CRD {c} established"),
        Wait::DeploymentReady(ns, n) => format!("Deployment {ns}/{n} rolled out"),
        Wait::DaemonSetReady(ns, n) => format!("DaemonSet {ns}/{n} rolled out"),
        Wait::RolloutHealthy(ns, n) => format!("Rollout {ns}/{n} healthy"),
        Wait::JobComplete(ns, n) => format!("Job {ns}/{n} complete"),
    }
}

/// A command as a person would type it: arguments with shell metacharacters quoted.
pub fn shell_words(command: &Command) -> String {
    command
        .iter()
        .map(|a| shell_word(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One argument as a person would type it: quoted when it holds a shell metacharacter.
fn shell_word(a: &str) -> String {
    let plain = !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain {
        a.to_owned()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_arguments_are_named_once_and_reused() {
        let script = "set -eu\necho \"$1\"\n".to_owned();
        let other = "set -eu\nexit 0\n".to_owned();
        let c = |s: &str, arg: &str| -> Command {
            vec![
                "sh".into(),
                "-c".into(),
                s.to_owned(),
                "sh".into(),
                arg.into(),
            ]
        };
        let (first, second, third) = (c(&script, "a b"), c(&other, "x"), c(&script, "y"));
        let mut scripts = Vec::new();
        assert_eq!(
            words_naming_scripts(&first, &mut scripts),
            "sh -c <script 1> sh 'a b'"
        );
        assert_eq!(
            words_naming_scripts(&second, &mut scripts),
            "sh -c <script 2> sh x"
        );
        assert_eq!(
            words_naming_scripts(&third, &mut scripts),
            "sh -c <script 1> sh y"
        );
        assert_eq!(scripts, [script.as_str(), other.as_str()]);
    }

    #[test]
    fn shell_words_quote_only_what_needs_it() {
        let c: Command = vec![
            "kubectl".into(),
            "--for=jsonpath={.status.phase}=Healthy".into(),
            "it's".into(),
        ];
        assert_eq!(
            shell_words(&c),
            r"kubectl '--for=jsonpath={.status.phase}=Healthy' 'it'\''s'"
        );
    }
}
