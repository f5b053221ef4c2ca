//! `keel preflight ENV`: before anything is applied, asks AWS STS who the caller is
//! (GetCallerIdentity through the default credential chain, honouring `AWS_ENDPOINT_URL`)
//! and refuses when the account or the configured region is not the environment's; then
//! checks every external dependency of the environment (`super::external`).
//!
//! The chain covers access keys, profiles with static keys, `credential_process` or SSO
//! (`sso_session` or the legacy `sso_start_url`), web identity (OIDC), and container or
//! instance roles. Every failure is one line saying what failed, why, and what to do
//! ([`explain`]), never the SDK's debug dump.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sts::error::SdkError;
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;

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
    preflight_before(project, env, None)
}

/// [`preflight`] of only the external dependencies needed by `stage` (every one when
/// `None`).
pub fn preflight_before(
    project: &Project,
    env: &str,
    stage: Option<crate::plan::Stage>,
) -> Result<Preflight, Error> {
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
    let identity = runtime
        .block_on(caller_identity(&want_region))
        .map_err(|failure| Error::Usage(format!("preflight {env}: {failure}")))?;
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
    let dependencies = runtime.block_on(super::external::preflight(
        environment,
        &identity.region,
        stage,
    ))?;
    Ok(Preflight {
        identity,
        dependencies,
    })
}

/// GetCallerIdentity with the default chain; `fallback_region` when none is configured.
/// Fails with one readable line (see [`explain`]).
async fn caller_identity(fallback_region: &str) -> Result<Identity, String> {
    let timeouts = TimeoutConfig::builder()
        .operation_timeout(STS_TIMEOUT)
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
    let endpoint = config.endpoint_url().map_or_else(
        || format!("https://sts.{region}.amazonaws.com"),
        str::to_owned,
    );
    let client = aws_sdk_sts::Client::new(&config);
    let answer = client
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| explain(&e, &endpoint))?;
    Ok(Identity {
        arn: answer.arn().unwrap_or("(no ARN)").to_owned(),
        account: answer.account().unwrap_or("(no account)").to_owned(),
        region,
    })
}

/// How long STS may take to answer.
const STS_TIMEOUT: Duration = Duration::from_secs(30);

/// The profile the chain reads: `AWS_PROFILE`, else `default`.
fn profile() -> String {
    std::env::var("AWS_PROFILE")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "default".into())
}

/// Every message of `e`'s source chain, each once, in order.
fn chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !text.is_empty() && !out.iter().any(|seen| seen.contains(&text)) {
            out.push(text);
        }
        next = err.source();
    }
    out
}

/// `text` on one line: runs of whitespace (newlines included) become one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One line for a failed GetCallerIdentity to `endpoint`: what failed, why, what to do.
fn explain(e: &SdkError<GetCallerIdentityError>, endpoint: &str) -> String {
    let reasons = chain(e);
    let has = |needle: &str| reasons.iter().any(|r| r.contains(needle));
    let last = reasons.last().map(|r| one_line(r)).unwrap_or_default();
    let profile = profile();
    match e {
        SdkError::ServiceError(service) => {
            let meta = service.err().meta();
            match meta.code() {
                Some(code) => format!(
                    "AWS STS refused the credentials ({code}: {}); renew them (expired keys, an ended session) or choose another profile with AWS_PROFILE",
                    one_line(meta.message().unwrap_or("no message"))
                ),
                None => format!(
                    "{endpoint} answered HTTP {} with no STS error in it, so it is not AWS STS; check AWS_ENDPOINT_URL and any proxy in between",
                    service.raw().status().as_u16()
                ),
            }
        }
        SdkError::TimeoutError(_) => format!(
            "AWS STS at {endpoint} did not answer within {} s; check the network, a proxy, and AWS_ENDPOINT_URL",
            STS_TIMEOUT.as_secs()
        ),
        _ if has("/sso/cache/") || has("SSO token") => format!(
            "the AWS SSO sign-in of profile {profile} has no valid cached token (never signed in, or it expired); run `aws sso login --profile {profile}` and try again"
        ),
        _ if has("external process") || has("credential_process") => format!(
            "the credential_process of profile {profile} failed ({last}); fix the command in the AWS config file or choose another profile with AWS_PROFILE"
        ),
        _ if has(&format!("profile `{profile}` was not defined")) => format!(
            "AWS_PROFILE names the profile {profile}, which the AWS config files do not define (~/.aws/config, ~/.aws/credentials, or AWS_CONFIG_FILE); check the name or run `aws configure --profile {profile}`"
        ),
        _ if has("no credentials found in chain")
            || has("the credential provider was not enabled") =>
        {
            let tried = if std::env::var_os("AWS_PROFILE").is_some() {
                format!(" (AWS_PROFILE is {profile}, but no AWS config file gives it credentials)")
            } else {
                String::new()
            };
            format!(
                "no usable AWS credentials{tried}: set AWS_PROFILE to a profile (keys, SSO or credential_process), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a role is assumed (CI: OIDC)"
            )
        }
        SdkError::DispatchFailure(failure) if failure.is_io() || failure.is_timeout() => {
            let why = if has("Connection refused") {
                "connection refused".to_owned()
            } else if failure.is_timeout() {
                "no answer in time".to_owned()
            } else {
                last
            };
            format!(
                "cannot reach AWS STS at {endpoint} ({why}); check the network, a proxy, and AWS_ENDPOINT_URL"
            )
        }
        _ => format!(
            "cannot ask AWS STS who the caller is ({}); check the credentials (AWS_PROFILE), the network and AWS_ENDPOINT_URL",
            one_line(&reasons.join(": "))
        ),
    }
}
