//! Workload identity: one value (namespace, ServiceAccount, permissions) makes both the IAM
//! role and the Kubernetes ServiceAccount that uses it, so the two cannot disagree.
//!
//! - IRSA: the role trusts the cluster's OIDC provider for exactly
//!   `system:serviceaccount:<namespace>:<name>` and the STS audience; the ServiceAccount
//!   carries `eks.amazonaws.com/role-arn` with the role's deterministic ARN.
//! - EKS Pod Identity: the role trusts `pods.eks.amazonaws.com` (session tags pin the
//!   namespace and ServiceAccount), an `aws_eks_pod_identity_association` binds it, and the
//!   ServiceAccount carries no annotation.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;

use super::Scope;
use super::iam::{Role, Statement, Trust, role_arn};
use crate::k8s::{self, IRSA_ANNOTATION, K8sError, Object, Rank};
use crate::refs::Expr;
use crate::tf::aws::resource::EksPodIdentityAssociation;

/// How pods get the role.
#[derive(Debug, Clone)]
pub enum Mechanism {
    /// IAM Roles for Service Accounts, through the cluster's OIDC provider.
    Irsa {
        /// ARN of the cluster's IAM OIDC provider.
        provider_arn: Expr,
        /// The cluster's OIDC issuer URL.
        issuer: Expr,
    },
    /// EKS Pod Identity (the agent add-on must run on the cluster).
    PodIdentity {
        /// The cluster's name.
        cluster_name: Expr,
    },
}

/// Who a workload is and what it may do in AWS.
#[derive(Debug, Clone)]
pub struct WorkloadIdentity {
    /// Terraform id of the role, e.g. `lb_controller`.
    pub id: String,
    /// Role name suffix after the stack prefix, e.g. `aws-load-balancer-controller`.
    pub role_suffix: String,
    /// Namespace of the ServiceAccount.
    pub namespace: String,
    /// ServiceAccount name.
    pub service_account: String,
    /// AWS managed policies (by path).
    pub managed: Vec<&'static str>,
    /// Inline statements.
    pub statements: Vec<Statement>,
}

impl WorkloadIdentity {
    /// `system:serviceaccount:<namespace>:<name>`, the subject IRSA pins.
    pub fn subject(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.namespace, self.service_account
        )
    }

    /// Creates the role (and, for Pod Identity, its association); returns it.
    pub fn create(&self, scope: &mut Scope<'_>, mechanism: &Mechanism) -> Role {
        let trust = match mechanism {
            Mechanism::Irsa {
                provider_arn,
                issuer,
            } => Trust::WebIdentity {
                provider_arn: provider_arn.clone(),
                issuer: issuer.clone(),
                subject: self.subject(),
            },
            Mechanism::PodIdentity { .. } => Trust::PodIdentity {
                namespace: self.namespace.clone(),
                service_account: self.service_account.clone(),
            },
        };
        let role = Role::new(
            scope,
            &self.id,
            &self.role_suffix,
            trust,
            &self.managed,
            self.statements.clone(),
        );
        if let Mechanism::PodIdentity { cluster_name } = mechanism {
            let association = EksPodIdentityAssociation::new(
                cluster_name,
                &self.namespace,
                role.arn(),
                &self.service_account,
            );
            scope.tf.add("identity", &self.id, association);
        }
        role
    }

    /// The address of the Pod Identity association [`WorkloadIdentity::create`] makes under
    /// `mechanism` (none for IRSA): what must exist before the pods ask for credentials.
    pub fn association(&self, mechanism: &Mechanism) -> Option<String> {
        matches!(mechanism, Mechanism::PodIdentity { .. })
            .then(|| format!("aws_eks_pod_identity_association.{}", self.id))
    }

    /// The role's ARN, known at synth (the ServiceAccount annotation needs it).
    pub fn role_arn(&self, scope: &Scope<'_>) -> String {
        role_arn(scope, &self.role_suffix)
    }

    /// The ServiceAccount: annotated with the role for IRSA, plain for Pod Identity.
    pub fn service_account_object(
        &self,
        scope: &Scope<'_>,
        mechanism: &Mechanism,
        labels: &BTreeMap<String, String>,
    ) -> Result<Object, K8sError> {
        let annotations = match mechanism {
            Mechanism::Irsa { .. } => {
                BTreeMap::from([(IRSA_ANNOTATION.to_owned(), self.role_arn(scope))])
            }
            Mechanism::PodIdentity { .. } => BTreeMap::new(),
        };
        let account = ServiceAccount {
            metadata: k8s::meta(
                "ServiceAccount",
                &self.service_account,
                Some(&self.namespace),
                labels,
                annotations,
                &[],
            )?,
            ..Default::default()
        };
        Object::new(Rank::ServiceAccount, &account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refs::Ref;

    fn identity(namespace: &str, service_account: &str) -> WorkloadIdentity {
        WorkloadIdentity {
            id: "controller".into(),
            role_suffix: "controller".into(),
            namespace: namespace.into(),
            service_account: service_account.into(),
            managed: vec![],
            statements: vec![Statement::allow(
                "Read",
                &["s3:GetObject"],
                vec!["arn:aws:s3:::b/*".into()],
            )],
        }
    }

    /// The trust policy's pinned subject and the ServiceAccount's name, namespace and
    /// annotation, as one synthesis renders them.
    fn both_sides(id: &WorkloadIdentity) -> (String, (String, String, String)) {
        let mut tf = crate::tf::tests::config();
        let env_name = "prod";
        let mut scope = Scope {
            tf: &mut tf,
            prefix: "eks-prod".into(),
            prod: true,
            env: env_name.into(),
        };
        let cluster = Ref::resource("aws_eks_cluster", "main");
        let mechanism = Mechanism::Irsa {
            provider_arn: Ref::resource("aws_iam_openid_connect_provider", "main").arn(),
            issuer: cluster.attr("identity[0].oidc[0].issuer"),
        };
        id.create(&mut scope, &mechanism);
        let labels = BTreeMap::from([("app.kubernetes.io/managed-by".into(), "keel".into())]);
        let sa = id
            .service_account_object(&scope, &mechanism, &labels)
            .unwrap();
        let trust = tf
            .body(&Ref::data("aws_iam_policy_document", "controller_trust"))
            .unwrap()
            .clone();
        let subject = trust["statement"][0]["condition"][0]["values"][0]
            .as_str()
            .unwrap()
            .to_owned();
        let meta = &sa.content["metadata"];
        (
            subject,
            (
                meta["namespace"].as_str().unwrap().to_owned(),
                meta["name"].as_str().unwrap().to_owned(),
                meta["annotations"][IRSA_ANNOTATION]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
        )
    }

    #[test]
    fn one_value_drives_the_trust_and_the_service_account() {
        let (subject, sa) = both_sides(&identity("kube-system", "controller"));
        assert_eq!(subject, "system:serviceaccount:kube-system:controller");
        assert_eq!(
            sa,
            (
                "kube-system".into(),
                "controller".into(),
                "arn:aws:iam::012345678901:role/eks-prod-controller".into()
            )
        );
        // Change the namespace and the name: both sides follow.
        let (subject, sa) = both_sides(&identity("platform", "reader"));
        assert_eq!(subject, "system:serviceaccount:platform:reader");
        assert_eq!((sa.0.as_str(), sa.1.as_str()), ("platform", "reader"));
    }
}
