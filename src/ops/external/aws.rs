//! The checks of dependencies that live in AWS, one SDK call (or page walk) each: S3
//! HeadBucket and GetBucketVersioning, IAM GetRole, Route 53 ListHostedZonesByName, ACM
//! DescribeCertificate, Secrets Manager DescribeSecret, CodeConnections
//! ListConnections. A "not found" answer is [`Verdict::Missing`] with how to create the
//! thing; any other error is [`Verdict::Unreachable`] with the SDK's words.

use aws_config::SdkConfig;
use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use super::{Context, Verdict};

/// One client per AWS service the checks call, all from one configuration.
#[derive(Debug, Clone)]
pub struct Clients {
    /// S3 (state bucket), in the configuration's region; the bucket's own region is set per call.
    pub s3: aws_sdk_s3::Client,
    /// IAM (apply role).
    pub iam: aws_sdk_iam::Client,
    /// Route 53 (hosted zones).
    pub route53: aws_sdk_route53::Client,
    /// The configuration ACM clients are made from, in each certificate's own region.
    pub acm: aws_sdk_acm::config::Builder,
    /// Secrets Manager (secret values).
    pub secrets: aws_sdk_secretsmanager::Client,
    /// CodeConnections (GitHub connections).
    pub connections: aws_sdk_codeconnections::Client,
}

/// An SDK error as [`Verdict::Unreachable`]: the call, the service's error code and
/// message (or the HTTP status, the time limit, the connection error), and where to look.
fn no_answer<E>(call: &str, error: &SdkError<E, HttpResponse>) -> Verdict
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let why = match error {
        SdkError::ServiceError(e) => {
            let status = e.raw().status().as_u16();
            match (e.err().code(), e.err().message()) {
                (Some(code), Some(message)) => format!("{code}: {message} (HTTP {status})"),
                (Some(code), None) => format!("{code} (HTTP {status})"),
                _ => format!("HTTP {status} without an AWS error code"),
            }
        }
        SdkError::ResponseError(e) => {
            format!("an unreadable answer (HTTP {})", e.raw().status().as_u16())
        }
        SdkError::TimeoutError(_) => "no answer in time".to_owned(),
        other => super::causes(other),
    };
    Verdict::Unreachable(format!(
        "{call} failed: {why}; check the credentials' permissions, the network and AWS_ENDPOINT_URL"
    ))
}

impl Clients {
    /// Clients for every service, from `config`.
    pub fn new(config: &SdkConfig) -> Self {
        Clients {
            s3: aws_sdk_s3::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
            route53: aws_sdk_route53::Client::new(config),
            acm: aws_sdk_acm::config::Builder::from(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            connections: aws_sdk_codeconnections::Client::new(config),
        }
    }

    /// The state bucket exists (HeadBucket, in the bucket's region). Its versioning is not
    /// read: moto, which the tests run against, answers GetBucketVersioning in a shape the
    /// SDK refuses, so that check could not be tested; the command to create the bucket
    /// turns versioning on.
    pub async fn state_bucket(&self, context: &Context, bucket: &str) -> Verdict {
        let region = aws_config::Region::new(context.state_region.clone());
        let head = self
            .s3
            .head_bucket()
            .bucket(bucket)
            .customize()
            .config_override(aws_sdk_s3::config::Builder::default().region(region))
            .send()
            .await;
        match head {
            Ok(_) => Verdict::Ok("exists".into()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => {
                Verdict::Missing(format!(
                    "create the bucket {bucket} in {} with versioning and encryption: {}",
                    context.state_region,
                    create_bucket_command(bucket, &context.state_region)
                ))
            }
            Err(e) => no_answer(&format!("S3 HeadBucket {bucket}"), &e),
        }
    }

    /// The apply role (or, with `plan`, the read-only plan role) exists.
    pub async fn apply_role(&self, context: &Context, name: &str, plan: bool) -> Verdict {
        match self.iam.get_role().role_name(name).send().await {
            Ok(_) => Verdict::Ok("exists".into()),
            Err(e) => {
                if e.as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception())
                {
                    let env = &context.env;
                    let (github_env, variable, what) = if plan {
                        (
                            format!("{env}-plan"),
                            "KEEL_PLAN_ROLE_ARN",
                            "read-only (state read and lock, Secrets Manager metadata, ACM, Route 53, CodeConnections)",
                        )
                    } else {
                        (
                            env.clone(),
                            "KEEL_APPLY_ROLE_ARN",
                            "allowed to create what the stacks create (the platform gives it a cluster access entry)",
                        )
                    };
                    Verdict::Missing(format!(
                        "create the role {name} that deploy.yml assumes by OIDC, {what}, trusting only `repo:<this repository>:environment:{github_env}` through the account's token.actions.githubusercontent.com provider (aws iam create-role --role-name {name} --assume-role-policy-document file://trust.json), and set the variable {variable} of the GitHub environment {github_env} to its ARN"
                    ))
                } else {
                    no_answer(&format!("IAM GetRole {name}"), &e)
                }
            }
        }
    }

    /// A public hosted zone whose name is `host` or one of its parent domains exists.
    pub async fn hosted_zone(&self, host: &str) -> Verdict {
        let mut zones = Vec::new();
        let mut next: Option<(String, Option<String>)> = None;
        loop {
            let mut call = self.route53.list_hosted_zones_by_name();
            if let Some((name, id)) = next.take() {
                call = call.dns_name(name).set_hosted_zone_id(id);
            }
            let page = match call.send().await {
                Ok(page) => page,
                Err(e) => return no_answer("Route 53 ListHostedZonesByName", &e),
            };
            zones.extend(
                page.hosted_zones()
                    .iter()
                    .filter(|z| !z.config().is_some_and(|c| c.private_zone()))
                    .map(|z| z.name().trim_end_matches('.').to_ascii_lowercase()),
            );
            match (page.is_truncated(), page.next_dns_name()) {
                (true, Some(name)) => {
                    next = Some((
                        name.to_owned(),
                        page.next_hosted_zone_id().map(str::to_owned),
                    ));
                }
                _ => break,
            }
        }
        match serving_zone(host, &zones) {
            Some(zone) => Verdict::Ok(format!("public zone {zone}")),
            None => {
                let zone = suggested_zone(host);
                Verdict::Missing(format!(
                    "create a public hosted zone for {zone} and delegate it to the NS records Route 53 gives it (at the registrar or the parent zone): aws route53 create-hosted-zone --name {zone} --caller-reference keel-{zone}"
                ))
            }
        }
    }

    /// The certificate exists (in its ARN's region) and is issued.
    pub async fn certificate(&self, context: &Context, arn: &str) -> Verdict {
        let region = arn_region(arn).unwrap_or(&context.region).to_owned();
        let acm = aws_sdk_acm::Client::from_conf(
            self.acm
                .clone()
                .region(aws_config::Region::new(region.clone()))
                .build(),
        );
        let env = &context.env;
        let request = format!(
            "request one for the stack's host in {region}, validate it by DNS, and put its ARN in environments/{env}.yaml: aws acm request-certificate --region {region} --validation-method DNS --domain-name <host>"
        );
        match acm.describe_certificate().certificate_arn(arn).send().await {
            Ok(answer) => {
                let status = answer.certificate().and_then(|c| c.status());
                match status {
                    Some(aws_sdk_acm::types::CertificateStatus::Issued) => {
                        Verdict::Ok("issued".into())
                    }
                    Some(aws_sdk_acm::types::CertificateStatus::PendingValidation) => {
                        Verdict::Missing(format!(
                            "not issued yet (PENDING_VALIDATION): create the DNS records that `aws acm describe-certificate --region {region} --certificate-arn {arn} --query Certificate.DomainValidationOptions` lists"
                        ))
                    }
                    other => Verdict::Missing(format!(
                        "the certificate is {}, not ISSUED: {request}",
                        other.map_or("without a status", |s| s.as_str())
                    )),
                }
            }
            Err(e) => {
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception())
                {
                    Verdict::Missing(format!("no such certificate: {request}"))
                } else {
                    no_answer(&format!("ACM DescribeCertificate {arn}"), &e)
                }
            }
        }
    }

    /// The secret exists and has a current value.
    pub async fn secret_value(&self, name: &str, how: &str) -> Verdict {
        match self.secrets.describe_secret().secret_id(name).send().await {
            Ok(answer) => {
                let current = answer
                    .version_ids_to_stages()
                    .is_some_and(|v| v.values().flatten().any(|s| s == "AWSCURRENT"));
                if current {
                    Verdict::Ok("has a value".into())
                } else {
                    Verdict::Missing(format!("the secret has no value yet: {how}"))
                }
            }
            Err(e) => {
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception())
                {
                    Verdict::Missing(format!(
                        "the secret does not exist yet; its stack's Terraform root creates it empty: apply that root, then {how}"
                    ))
                } else {
                    no_answer(&format!("Secrets Manager DescribeSecret {name}"), &e)
                }
            }
        }
    }

    /// The connection exists and is AVAILABLE (authorized in the console once).
    pub async fn connection(&self, name: &str) -> Verdict {
        let mut next: Option<String> = None;
        let mut found = None;
        loop {
            let page = match self
                .connections
                .list_connections()
                .set_next_token(next.take())
                .send()
                .await
            {
                Ok(page) => page,
                Err(e) => return no_answer("CodeConnections ListConnections", &e),
            };
            if let Some(c) = page
                .connections()
                .iter()
                .find(|c| c.connection_name() == Some(name))
            {
                found = Some(c.connection_status().map(|s| s.as_str().to_owned()));
                break;
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => break,
            }
        }
        connection_verdict(name, found)
    }
}

/// The verdict on a connection from its status (`None`: no connection of that name;
/// `Some(None)`: one without a status).
fn connection_verdict(name: &str, found: Option<Option<String>>) -> Verdict {
    let authorize = format!(
        "authorize it once in the AWS console (Developer Tools > Settings > Connections > {name} > Update pending connection), installing the AWS Connector for GitHub app on the organization"
    );
    match found {
        None => Verdict::Missing(format!(
            "no connection named {name}: apply the platform stack's Terraform root (it creates the connection, PENDING), then {authorize}"
        )),
        Some(Some(status)) if status == "AVAILABLE" => Verdict::Ok("AVAILABLE".into()),
        Some(Some(status)) if status == "PENDING" => {
            Verdict::Missing(format!("the connection is PENDING: {authorize}"))
        }
        Some(status) => Verdict::Missing(format!(
            "the connection is {}, not AVAILABLE: delete it, apply the platform stack's Terraform root again, then {authorize}",
            status.as_deref().unwrap_or("without a status")
        )),
    }
}

/// The `aws` commands that create a private, versioned, encrypted state bucket.
fn create_bucket_command(bucket: &str, region: &str) -> String {
    // us-east-1 is the one region that refuses an explicit LocationConstraint.
    let location = if region == "us-east-1" {
        String::new()
    } else {
        format!(" --create-bucket-configuration LocationConstraint={region}")
    };
    format!(
        "aws s3api create-bucket --bucket {bucket} --region {region}{location} && aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled && aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration '{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"aws:kms\"}},\"BucketKeyEnabled\":true}}]}}' && aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true"
    )
}

/// The longest zone of `zones` (names without the final dot, lowercase) that is `host`
/// or a parent domain of it.
fn serving_zone<'z>(host: &str, zones: &'z [String]) -> Option<&'z str> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    zones
        .iter()
        .filter(|z| host == **z || host.ends_with(&format!(".{z}")))
        .max_by_key(|z| z.len())
        .map(String::as_str)
}

/// The zone to create for `host`: its parent domain (`api.example.com` → `example.com`),
/// or `host` itself when it has two labels or fewer.
fn suggested_zone(host: &str) -> &str {
    let host = host.trim_end_matches('.');
    match host.split_once('.') {
        Some((_, parent)) if parent.contains('.') => parent,
        _ => host,
    }
}

/// The region field of an ARN (`arn:aws:acm:<region>:...`), when it has one.
fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serving_zone_is_the_longest_parent_domain() {
        let zones = ["example.com".to_owned(), "api.example.com".to_owned()];
        assert_eq!(
            serving_zone("API.example.com.", &zones),
            Some("api.example.com")
        );
        assert_eq!(
            serving_zone("x.api.example.com", &zones),
            Some("api.example.com")
        );
        assert_eq!(
            serving_zone("tickets.example.com", &zones),
            Some("example.com")
        );
        assert_eq!(serving_zone("badexample.com", &zones), None);
        assert_eq!(serving_zone("example.org", &zones), None);
    }

    #[test]
    fn the_suggested_zone_is_the_parent_domain() {
        assert_eq!(suggested_zone("api.example.com"), "example.com");
        assert_eq!(suggested_zone("example.com."), "example.com");
        assert_eq!(suggested_zone("localhost"), "localhost");
    }

    #[test]
    fn arn_region_reads_the_fourth_field() {
        assert_eq!(
            arn_region("arn:aws:acm:eu-west-1:111122223333:certificate/x"),
            Some("eu-west-1")
        );
        assert_eq!(arn_region("arn:aws:iam::111122223333:role/x"), None);
        assert_eq!(arn_region("nonsense"), None);
    }

    #[test]
    fn us_east_1_buckets_get_no_location_constraint() {
        assert!(!create_bucket_command("b", "us-east-1").contains("LocationConstraint"));
        assert!(
            create_bucket_command("b", "eu-west-1")
                .contains("--create-bucket-configuration LocationConstraint=eu-west-1")
        );
    }

    #[test]
    fn only_an_available_connection_passes() {
        assert_eq!(
            connection_verdict("c", Some(Some("AVAILABLE".into()))),
            Verdict::Ok("AVAILABLE".into())
        );
        for found in [
            None,
            Some(None),
            Some(Some("PENDING".into())),
            Some(Some("ERROR".into())),
        ] {
            let verdict = connection_verdict("c", found.clone());
            assert!(verdict.fails(), "{found:?}: {verdict:?}");
        }
        let Verdict::Missing(pending) = connection_verdict("c", Some(Some("PENDING".into())))
        else {
            unreachable!("a PENDING connection is missing")
        };
        assert!(pending.contains("Update pending connection"), "{pending}");
    }
}
