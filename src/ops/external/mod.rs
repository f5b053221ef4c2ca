//! The external dependencies of an environment (what a deploy needs that keel does not
//! create: the state bucket, the apply role, hosted zones, certificates, secret values,
//! HTTP services, CodeConnections connections) and their check by `keel preflight`.
//!
//! The list is read from the built stacks ([`Stack::external`](crate::stack::Stack)) plus
//! the environment's state bucket, deduplicated and sorted. Every dependency is checked at
//! once, each with its own time limit, and the report has one line per dependency: `ok`, or
//! what is wrong and how to create or fix it.

mod aws;
mod http;

pub use aws::Clients;

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use crate::env::Env;
use crate::error::Error;
use crate::plan::External;
use crate::stacks;

/// How long one dependency's check may take before it is reported as unanswered.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Every external dependency of `env`: its state bucket and whatever its stacks declare,
/// deduplicated and sorted. A stack that does not build is a user error (as in synth).
pub fn declared(env: &Env) -> Result<Vec<External>, Error> {
    let mut all = BTreeSet::new();
    all.insert(External::StateBucket {
        bucket: env.spec.state.bucket.clone(),
    });
    let mut errors = Vec::new();
    for def in stacks::ALL {
        match (def.build)(env) {
            Ok(Some(stack)) => all.extend(stack.external),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(all.into_iter().collect())
    } else {
        Err(Error::Stacks(errors))
    }
}

/// An error and its sources, `: `-separated, without the `Debug` dump that
/// `DisplayErrorContext` adds.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

/// What a check found about one dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It exists and is usable; the text says what was seen (e.g. `issued`).
    Ok(String),
    /// It does not exist or is not usable yet; the text says how to create or fix it.
    Missing(String),
    /// The check got no answer (network, permissions, time limit): the text says which
    /// request failed and why. Counts as a failure: nothing was confirmed.
    Unreachable(String),
    /// Deliberately not checked from here, with the reason (e.g. an address that only
    /// resolves inside the cluster). Not a failure.
    Skipped(String),
}

impl Verdict {
    /// Whether this verdict stops preflight.
    pub fn fails(&self) -> bool {
        matches!(self, Verdict::Missing(_) | Verdict::Unreachable(_))
    }

    fn label(&self) -> &'static str {
        match self {
            Verdict::Ok(_) => "ok",
            Verdict::Missing(_) => "MISSING",
            Verdict::Unreachable(_) => "UNREACHABLE",
            Verdict::Skipped(_) => "skipped",
        }
    }

    fn text(&self) -> &str {
        match self {
            Verdict::Ok(t)
            | Verdict::Missing(t)
            | Verdict::Unreachable(t)
            | Verdict::Skipped(t) => t,
        }
    }
}

/// One dependency and what its check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The dependency.
    pub dependency: External,
    /// What its check found.
    pub verdict: Verdict,
}

/// The findings of one preflight, in the order of [`declared`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// One finding per dependency.
    pub findings: Vec<Finding>,
}

impl Report {
    /// How many findings stop preflight.
    pub fn failures(&self) -> usize {
        self.findings.iter().filter(|f| f.verdict.fails()).count()
    }
}

impl fmt::Display for Report {
    /// One line per dependency: `  <label>  <dependency>: <what was seen or what to do>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(
                f,
                "  {:<11}  {}: {}",
                finding.verdict.label(),
                describe(&finding.dependency),
                finding.verdict.text()
            )?;
        }
        Ok(())
    }
}

/// The dependency in a few words, naming it as the user searches for it.
pub fn describe(dependency: &External) -> String {
    match dependency {
        External::StateBucket { bucket } => format!("state bucket {bucket}"),
        External::ApplyRole { name } => format!("apply role {name}"),
        External::PlanRole { name } => format!("plan role {name}"),
        External::HostedZone { host } => format!("hosted zone for {host}"),
        External::Certificate { arn } => format!("certificate {arn}"),
        External::SecretValue { name, .. } => format!("secret {name}"),
        External::Service { what, url } => format!("{what} at {url}"),
        External::Connection { name } => format!("connection {name}"),
    }
}

/// Where the checks run: the environment's name and the regions its dependencies live in.
#[derive(Debug, Clone)]
pub struct Context {
    /// Environment name (in messages: `environments/<env>.yaml`).
    pub env: String,
    /// The environment's region.
    pub region: String,
    /// The state bucket's region (the environment's unless `state.region` says otherwise).
    pub state_region: String,
}

impl Context {
    /// The context of `env`.
    pub fn of(env: &Env) -> Self {
        let region = env.spec.region.clone();
        Context {
            env: env.name().to_owned(),
            state_region: env
                .spec
                .state
                .region
                .clone()
                .unwrap_or_else(|| region.clone()),
            region,
        }
    }
}

/// Checks every dependency at once, each within `timeout`, with `clients` (made from one
/// configuration: credentials, region, `AWS_ENDPOINT_URL`).
pub async fn check(
    clients: &Clients,
    context: &Context,
    dependencies: &[External],
    timeout: Duration,
) -> Report {
    let mut running = tokio::task::JoinSet::new();
    for (i, dependency) in dependencies.iter().enumerate() {
        let dependency = dependency.clone();
        let clients = clients.clone();
        let context = context.clone();
        running.spawn(async move {
            let verdict =
                match tokio::time::timeout(timeout, one(&clients, &context, &dependency)).await {
                    Ok(verdict) => verdict,
                    Err(_) => Verdict::Unreachable(format!(
                        "no answer within {} s; check the network and AWS_ENDPOINT_URL",
                        timeout.as_secs()
                    )),
                };
            (i, verdict)
        });
    }
    let mut verdicts: Vec<(usize, Verdict)> = Vec::with_capacity(dependencies.len());
    while let Some(done) = running.join_next().await {
        match done {
            Ok(pair) => verdicts.push(pair),
            // A check only fails to join if it panicked: pass that panic on unchanged.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    verdicts.sort_by_key(|(i, _)| *i);
    Report {
        findings: dependencies
            .iter()
            .cloned()
            .zip(verdicts.into_iter().map(|(_, v)| v))
            .map(|(dependency, verdict)| Finding {
                dependency,
                verdict,
            })
            .collect(),
    }
}

/// The check of one dependency.
async fn one(clients: &aws::Clients, context: &Context, dependency: &External) -> Verdict {
    match dependency {
        External::StateBucket { bucket } => clients.state_bucket(context, bucket).await,
        External::ApplyRole { name } => clients.apply_role(context, name, false).await,
        External::PlanRole { name } => clients.apply_role(context, name, true).await,
        External::HostedZone { host } => clients.hosted_zone(host).await,
        External::Certificate { arn } => clients.certificate(context, arn).await,
        External::SecretValue { name, how } => clients.secret_value(name, how).await,
        External::Connection { name } => clients.connection(name).await,
        External::Service { what, url } => http::service(what, url).await,
    }
}

/// The AWS configuration of the checks: the default credential chain (as STS was asked),
/// `region` (the caller's, which preflight has compared with the environment's), each call
/// bounded in time.
pub async fn aws_config(region: &str) -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(CHECK_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .region(aws_config::Region::new(region.to_owned()))
        .load()
        .await
}

/// Checks every dependency of `env` in `region`; the report when all are there, else a
/// user error (exit 2) listing every dependency, each missing one with how to create it.
pub async fn preflight(
    env: &Env,
    region: &str,
    stage: Option<crate::plan::Stage>,
) -> Result<Report, Error> {
    let mut dependencies = declared(env)?;
    if let Some(stage) = stage {
        // Only what is needed by then: before Terraform, the secrets it creates empty do
        // not exist yet.
        dependencies.retain(|d| d.needed_before() <= stage);
    }
    let context = Context::of(env);
    let config = aws_config(region).await;
    let report = check(
        &aws::Clients::new(&config),
        &context,
        &dependencies,
        CHECK_TIMEOUT,
    )
    .await;
    match report.failures() {
        0 => Ok(report),
        n => Err(Error::Usage(format!(
            "preflight {}: {n} of {} external dependencies are missing or could not be checked; create them as said, then run `keel preflight {}` again:\n{report}",
            context.env,
            report.findings.len(),
            context.env,
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_missing_and_unreachable_fail() {
        assert!(Verdict::Missing("x".into()).fails());
        assert!(Verdict::Unreachable("x".into()).fails());
        assert!(!Verdict::Ok("x".into()).fails());
        assert!(!Verdict::Skipped("x".into()).fails());
    }

    #[test]
    fn the_report_has_one_aligned_line_per_dependency() {
        let report = Report {
            findings: vec![
                Finding {
                    dependency: External::StateBucket { bucket: "b".into() },
                    verdict: Verdict::Ok("exists".into()),
                },
                Finding {
                    dependency: External::ApplyRole { name: "r".into() },
                    verdict: Verdict::Missing("create it".into()),
                },
            ],
        };
        assert_eq!(report.failures(), 1);
        assert_eq!(
            report.to_string(),
            "  ok           state bucket b: exists\n  MISSING      apply role r: create it\n"
        );
    }
}
