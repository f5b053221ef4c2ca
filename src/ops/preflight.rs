//! `keel preflight ENV`: before anything is applied, asks AWS STS who the caller is
//! (GetCallerIdentity through the default credential chain, honouring `AWS_ENDPOINT_URL`)
//! and refuses when the account or the configured region is not the environment's; then
//! checks every external dependency of the environment (`super::external`).

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sts::error::DisplayErrorContext;

use crate::error::Error;

use super::Project;

/// Who the caller is, as STS said, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The caller's ARN.
    pub arn: String,
    /// The caller's account.
    pub account: String,
    /// The region the credential chain is configured for (the environment's when none is).
    pub region: String,
}

/// What a passing preflight found: the caller, and every external dependency there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    /// Who the caller is.
    pub identity: Identity,
    /// One `ok` (or `skipped`) line per external dependency.
    pub dependencies: super::external::Report,
}

/// Checks the caller against environment `env`, then its external dependencies; a user
/// error (exit 2) names the caller, the account and the region when they do not match or
/// there are no usable credentials, or lists every dependency when one is missing.
pub fn preflight(project: &Project, env: &str) -> Result<Preflight, Error> {
    let envs = project.load(&[env.to_owned()])?;
    let Some(environment) = envs.first() else {
        return Err(Error::Usage(format!("no environment {env:?}")));
    };
    let want_account = environment.spec.account_id.clone();
    let want_region = environment.spec.region.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(anyhow::anyhow!("starting the async runtime: {e}")))?;
    let identity = runtime.block_on(caller_identity(&want_region))?;
    let file = format!("environments/{env}.yaml");
    if identity.account != want_account {
        return Err(Error::Usage(format!(
            "preflight {env}: the caller {} is in account {}, but {file} says account_id {want_account} (region {}); use the credentials of account {want_account} (e.g. AWS_PROFILE) before applying",
            identity.arn, identity.account, identity.region
        )));
    }
    if identity.region != want_region {
        return Err(Error::Usage(format!(
            "preflight {env}: the caller {} is in the right account {}, but the AWS region is {} where {file} says {want_region}; set AWS_REGION={want_region}",
            identity.arn, identity.account, identity.region
        )));
    }
    let dependencies =
        runtime.block_on(super::external::preflight(environment, &identity.region))?;
    Ok(Preflight {
        identity,
        dependencies,
    })
}

/// GetCallerIdentity with the default chain; `fallback_region` when none is configured.
async fn caller_identity(fallback_region: &str) -> Result<Identity, Error> {
    let timeouts = TimeoutConfig::builder()
        .operation_timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .build();
    let mut config = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts.clone())
        .load()
        .await;
    if config.region().is_none() {
        config = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeouts)
            .region(aws_config::Region::new(fallback_region.to_owned()))
            .load()
            .await;
    }
    let region = config
        .region()
        .map_or_else(|| fallback_region.to_owned(), ToString::to_string);
    let client = aws_sdk_sts::Client::new(&config);
    let answer = client.get_caller_identity().send().await.map_err(|e| {
        let detail = DisplayErrorContext(&e).to_string();
        let hint = if detail.contains("credential") {
            "no usable AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a role is assumed (CI: OIDC)"
        } else {
            "check the network, AWS_ENDPOINT_URL and the credentials"
        };
        Error::Usage(format!(
            "preflight: cannot ask AWS STS who the caller is ({hint}): {detail}"
        ))
    })?;
    Ok(Identity {
        arn: answer.arn().unwrap_or("(no ARN)").to_owned(),
        account: answer.account().unwrap_or("(no account)").to_owned(),
        region,
    })
}
