//! `keel synth`: build every selected stack for every selected environment, render them,
//! and only when all succeeded replace their folders under `generated/`.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::exports;
use crate::render::{self, Files, Tree};
use crate::stack::{StackDef, StackError};
use crate::stacks;

use super::Project;

/// What to synthesize.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Environment names; empty means all.
    pub envs: Vec<String>,
    /// One stack only; `None` means every stack.
    pub stack: Option<String>,
}

/// One rendered stack of one environment.
#[derive(Debug)]
pub struct Output {
    /// Environment name.
    pub env: String,
    /// Stack name.
    pub stack: &'static str,
    /// Position in the environment's apply order (1 = first): producers of imported
    /// values come before their consumers.
    pub apply_order: usize,
    /// Rendered files, relative to `generated/<env>/<stack>/`.
    pub files: Files,
    /// Managed Terraform resources.
    pub resources: usize,
    /// Kubernetes objects.
    pub kubernetes_objects: usize,
    /// Warnings for the operator.
    pub warnings: Vec<String>,
}

/// Builds and renders the selection in memory; writes nothing.
pub fn build(project: &Project, selection: &Selection) -> Result<Vec<Output>, Error> {
    let defs: Vec<_> = match &selection.stack {
        Some(name) => vec![stacks::find(name).ok_or_else(|| {
            Error::Usage(format!(
                "no stack {name:?}: expected one of {}",
                stacks::ALL
                    .iter()
                    .map(|s| s.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?],
        None => stacks::ALL.iter().collect(),
    };
    let envs = project.load(&selection.envs)?;
    let mut errors = one_github_provider_per_account(&envs);
    errors.extend(kubernetes_version_skew(&envs));
    let mut outputs = Vec::new();
    // Environments are independent: built on every core, gathered in their order.
    for (mine, theirs) in super::in_parallel(&envs, |env| build_env(&project.root, env, &defs)) {
        outputs.extend(mine);
        errors.extend(theirs);
    }
    if errors.is_empty() {
        Ok(outputs)
    } else {
        Err(Error::Stacks(errors))
    }
}

/// Builds every stack of one environment, links them, and renders the selected ones.
fn build_env(
    root: &std::path::Path,
    env: &crate::env::Env,
    defs: &[&StackDef],
) -> (Vec<Output>, Vec<StackError>) {
    let mut outputs = Vec::new();
    let mut errors = Vec::new();
    // Every stack is built, even when one is selected: imports are checked against their
    // producers, and each stack's README (apply order, who imports its exports) is the same
    // whether one stack or all are synthesized. Only the selection is rendered.
    // Stacks are independent until linked: built on every core (one environment's
    // synth, or one stack's, would otherwise wait for each in turn).
    let results = super::in_parallel(stacks::ALL, |def| (def.build)(env));
    let mut built: Vec<(bool, crate::stack::Stack)> = Vec::new();
    for (def, result) in stacks::ALL.iter().zip(results) {
        let selected = defs.iter().any(|d| d.name == def.name);
        match result {
            Ok(Some(stack)) => built.push((selected, stack)),
            Ok(None) => {}
            Err(e) if selected => errors.push(e),
            Err(_) => {}
        }
    }
    // The platform's add-on layer follows from every stack of the environment.
    if errors.is_empty()
        && let Err(e) = crate::addons::attach(env, &mut built)
    {
        errors.push(e);
        return (outputs, errors);
    }
    // Registry order (a stack the layer had to build again comes last otherwise).
    built.sort_by_key(|(_, s)| stacks::ALL.iter().position(|d| d.name == s.name));
    let links: Vec<exports::StackLinks<'_>> = built
        .iter()
        .map(|(_, s)| exports::StackLinks {
            stack: s.name,
            exports: s.terraform.exports(),
            imports: s.terraform.imports(),
        })
        .collect();
    let order = match exports::link(env.name(), &links) {
        Ok(order) => order,
        Err(messages) => {
            errors.extend(messages.into_iter().map(|m| StackError {
                stack: "exports",
                env: env.name().to_owned(),
                message: m,
            }));
            return (outputs, errors);
        }
    };
    // Each stack's page needs every stack's links; written before the stacks are consumed.
    let readmes: Vec<Option<String>> = built
        .iter()
        .map(|(selected, s)| {
            selected.then(|| {
                let description = stacks::find(s.name).map_or("", |d| d.description);
                let cx = render::readme::Context {
                    env: env.name(),
                    description,
                    order: &order,
                    links: &links,
                };
                render::readme::render(s, &cx)
            })
        })
        .collect();
    drop(links);
    let names: Vec<&str> = built.iter().map(|(_, s)| s.name).collect();
    let adoption = crate::env::adopt::Adoption::new(root, env);
    errors.extend(adoption.check_env(&names).into_iter().map(|m| StackError {
        stack: "adopt",
        env: env.name().to_owned(),
        message: m,
    }));
    for ((selected, stack), readme) in built.into_iter().zip(readmes) {
        if !selected {
            continue;
        }
        let addresses = stack.terraform.resource_addresses();
        let imports = match adoption.imports(stack.name, &addresses) {
            Ok(imports) => imports,
            Err(messages) => {
                errors.extend(
                    messages
                        .into_iter()
                        .map(|m| StackError::new(stack.name, env.name(), m)),
                );
                continue;
            }
        };
        match policy_then_render(&stack, env.name()) {
            Ok(mut files) => {
                if let Some(imports) = imports {
                    files.insert(
                        PathBuf::from("terraform/imports.tf.json"),
                        crate::tf::to_pretty_json(imports),
                    );
                }
                files.extend(readme.map(|r| (PathBuf::from("README.md"), r)));
                outputs.push(Output {
                    env: env.name().to_owned(),
                    stack: stack.name,
                    apply_order: order.iter().position(|s| *s == stack.name).unwrap_or(0) + 1,
                    files,
                    resources: stack.terraform.resource_count(),
                    kubernetes_objects: stack.kubernetes_objects(),
                    warnings: stack.warnings,
                });
            }
            Err(e) => errors.push(e),
        }
    }
    (outputs, errors)
}

/// Every stack of `env`, built, in registry order, with the environment's apply order:
/// what `keel plan` orders. Nothing is rendered.
pub fn environment_stacks(
    env: &crate::env::Env,
) -> Result<(Vec<crate::stack::Stack>, Vec<&'static str>), Vec<StackError>> {
    let mut built = Vec::new();
    let mut errors = Vec::new();
    for def in stacks::ALL {
        match (def.build)(env) {
            Ok(Some(stack)) => built.push(stack),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // The platform with the add-on layer derived from every stack, as synth renders it.
    let mut selected: Vec<(bool, crate::stack::Stack)> =
        built.into_iter().map(|s| (true, s)).collect();
    crate::addons::attach(env, &mut selected).map_err(|e| vec![e])?;
    let built: Vec<crate::stack::Stack> = selected.into_iter().map(|(_, s)| s).collect();
    let links = stack_links(&built);
    let order = exports::link(env.name(), &links).map_err(|messages| {
        messages
            .into_iter()
            .map(|m| StackError {
                stack: "exports",
                env: env.name().to_owned(),
                message: m,
            })
            .collect::<Vec<_>>()
    })?;
    Ok((built, order))
}

/// The exports and imports of each of `built`.
pub fn stack_links(built: &[crate::stack::Stack]) -> Vec<exports::StackLinks<'_>> {
    built
        .iter()
        .map(|s| exports::StackLinks {
            stack: s.name,
            exports: s.terraform.exports(),
            imports: s.terraform.imports(),
        })
        .collect()
}

/// The GitHub Actions OIDC provider exists once per AWS account: two environments in one
/// account that both create it would fight over it (the second apply fails).
fn one_github_provider_per_account(envs: &[crate::env::Env]) -> Vec<StackError> {
    use crate::stacks::platform::GithubOidcProvider;
    let mut creators: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for env in envs {
        if let Some(p) = &env.spec.stacks.platform
            && p.github_oidc_provider == GithubOidcProvider::Create
        {
            creators
                .entry(env.spec.account_id.as_str())
                .or_default()
                .push(env.name());
        }
    }
    creators
        .into_iter()
        .filter(|(_, envs)| envs.len() > 1)
        .map(|(account, envs)| StackError {
            stack: crate::stacks::platform::NAME,
            env: envs.join(", "),
            message: format!(
                "environments {} share account {account} and each creates its GitHub OIDC provider: set stacks.platform.github_oidc_provider to `existing` in all but the one that owns the account",
                envs.join(" and ")
            ),
        })
        .collect()
}

/// The clusters of the environments differ by at most one minor version
/// ([`crate::env::kubernetes_support::skew_problem`]).
fn kubernetes_version_skew(envs: &[crate::env::Env]) -> Option<StackError> {
    let versions: Vec<(&str, crate::env::Tier, &str)> = envs
        .iter()
        .filter(|e| e.spec.stacks.platform.is_some())
        .filter_map(|e| {
            let kube = e.spec.kubernetes.as_ref()?;
            Some((e.name(), e.spec.tier, kube.version.as_str()))
        })
        .collect();
    crate::env::kubernetes_support::skew_problem(&versions).map(|message| StackError {
        stack: crate::stacks::platform::NAME,
        env: versions
            .iter()
            .map(|(env, ..)| *env)
            .collect::<Vec<_>>()
            .join(", "),
        message,
    })
}

/// Runs the built-in policy over a stack, then renders it.
fn policy_then_render(
    stack: &crate::stack::Stack,
    env: &str,
) -> Result<Files, crate::stack::StackError> {
    let findings = crate::policy::check(&stack.terraform);
    if !findings.is_empty() {
        return Err(crate::stack::StackError::new(
            stack.name,
            env,
            findings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    render::stack_files(stack, env)
}

/// Every file of environment `env`'s folder under `generated/`: each stack's files under
/// its own name.
pub fn environment_tree<'a>(outputs: &'a [Output], env: &str) -> Tree<'a> {
    outputs
        .iter()
        .filter(|o| o.env == env)
        .flat_map(|o| {
            o.files
                .iter()
                .map(|(rel, body)| (Path::new(o.stack).join(rel), body.as_str()))
        })
        .collect()
}

/// Builds the selection and, when everything succeeded, writes it under `generated/`.
/// A whole environment folder is replaced unless one stack was selected.
pub fn synth(project: &Project, selection: &Selection) -> Result<Vec<Output>, Error> {
    // From reading the inputs to the last rename: what lands on disk is what was read.
    let _lock = project.lock(super::lock::Mode::Exclusive)?;
    let outputs = build(project, selection)?;
    super::storage::refuse_shrink(project, &outputs)?;
    let generated = project.generated_dir();
    let envs: Vec<String> = if selection.envs.is_empty() {
        project.environment_names()?
    } else {
        selection.envs.clone()
    };
    let mut replacements: Vec<(PathBuf, Tree<'_>)> = Vec::new();
    for env in &envs {
        let mine = outputs.iter().filter(|o| &o.env == env);
        if selection.stack.is_some() {
            for o in mine {
                let tree = o.files.iter().map(|(p, b)| (p.clone(), b.as_str()));
                replacements.push((generated.join(env).join(o.stack), tree.collect()));
            }
        } else {
            replacements.push((generated.join(env), environment_tree(&outputs, env)));
        }
    }
    refuse_links(
        project,
        replacements.iter().map(|(target, _)| target.as_path()),
    )?;
    // Under the exclusive lock, any staging folder is a killed run's: none is left to fail
    // `check`, whichever stacks this run writes.
    render::remove_leftovers(&generated)?;
    // All environments or none: a full disk or a read-only folder changes nothing.
    render::replace_dirs(&replacements)?;
    Ok(outputs)
}

/// Refuses to write when a symbolic link is on the way to a target folder or inside one:
/// a committed link would make synth write, and delete, outside the project.
fn refuse_links<'a>(
    project: &Project,
    targets: impl Iterator<Item = &'a Path>,
) -> Result<(), Error> {
    let mut links = Vec::new();
    for target in targets {
        match crate::inputs::first_link(&project.root, target) {
            Some(link) => links.push(link),
            None => links.extend(crate::inputs::links_under(target)),
        }
    }
    links.sort();
    links.dedup();
    if links.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = links
        .iter()
        .map(|l| format!("  {}", l.strip_prefix(&project.root).unwrap_or(l).display()))
        .collect();
    Err(Error::Usage(format!(
        "refusing to write through a symbolic link under generated/: synth writes only real \
         folders inside the project (through a link it would write, and delete, elsewhere); \
         remove the link and run synth again:\n{}",
        shown.join("\n")
    )))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::stack::Stack;

    #[test]
    fn a_policy_finding_stops_the_stack_before_rendering() {
        let mut terraform = crate::tf::tests::config();
        terraform.resource(
            "security",
            "aws_vpc_security_group_ingress_rule",
            "ssh_from_anywhere",
            json!({"cidr_ipv4": "0.0.0.0/0", "from_port": 22, "to_port": 22, "ip_protocol": "tcp"}),
        );
        let stack = Stack {
            name: "example",
            terraform,
            kubernetes: BTreeMap::new(),
            objects: Vec::new(),
            jobs: BTreeMap::new(),
            deploy: BTreeMap::new(),
            warnings: Vec::new(),
            steps: Vec::new(),
            addons: Vec::new(),
            addon_values: BTreeMap::new(),
            external: Vec::new(),
        };
        let err = policy_then_render(&stack, "prod").unwrap_err();
        assert_eq!(
            err.to_string(),
            "stack example for environment prod: policy world_open_ingress: \
             aws_vpc_security_group_ingress_rule.ssh_from_anywhere: open to the internet on ports 22..22; \
             allow a security group or a specific CIDR"
        );
    }
}
