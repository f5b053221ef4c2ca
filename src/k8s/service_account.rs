//! The application's own ServiceAccount: API token automount off unless the pod needs the
//! API, optional IRSA role annotation.
//!
//! See <https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html>.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;

use super::construct::Ctx;
use super::{K8sError, Object, Rank};

/// The IRSA annotation key on a ServiceAccount.
pub const IRSA_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// Identity of the application's pods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAccountProps {
    /// Whether the pod talks to the Kubernetes API (mounts a token). Default: `false`.
    pub needs_api: bool,
    /// IAM role the pods assume through IRSA (`arn:aws:iam::<account>:role/<name>`).
    /// Default: none (no annotation).
    pub iam_role_arn: Option<String>,
}

pub(super) fn build(ctx: &Ctx<'_>) -> Result<Object, K8sError> {
    let sa = &ctx.props.service_account;
    let mut annotations = BTreeMap::new();
    if let Some(arn) = &sa.iam_role_arn {
        let ok = arn.starts_with("arn:aws") && arn.contains(":iam::") && arn.contains(":role/");
        if !ok {
            return Err(K8sError::InvalidProps {
                field: "service_account.iam_role_arn".to_owned(),
                found: format!("`{arn}`"),
                expected: "an IAM role ARN like `arn:aws:iam::111111111111:role/analytics-api`"
                    .to_owned(),
            });
        }
        annotations.insert(IRSA_ANNOTATION.to_owned(), arn.clone());
    }
    let account = ServiceAccount {
        metadata: ctx.meta("ServiceAccount", ctx.name(), annotations)?,
        automount_service_account_token: Some(sa.needs_api),
        ..Default::default()
    };
    Object::new(Rank::ServiceAccount, &account)
}
