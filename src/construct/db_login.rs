//! An application's own database login (PostgreSQL or MySQL): a generated password in
//! Secrets Manager, the connection URL built from it, and the idempotent SQL that creates
//! or updates the login as the RDS master user, run where the database is reachable: a Kubernetes Job in the
//! stack's namespace ([`DatabaseLogin::cluster_job`]) or a one-off ECS task
//! ([`super::db_login_task`]), each a step of the deploy plan before the workloads.
//!
//! Applications never log in as the master user: RDS rotates the master secret every
//! 7 days, and a task that read it at start would fail to open new connections after the
//! next rotation. The application's password is generated once by Secrets Manager and
//! changed only by an operator; every run of the login step sets the login's password
//! from its secret again, so after a rotation the step is re-run (each deploy does) and
//! the consumers restarted.

use super::Scope;
use super::db_client;
use super::iam::Statement;
use super::kms::KmsKey;
use super::rds::RdsInstance;
use super::secrets::GeneratedSecret;
use super::workload_identity::{Mechanism, WorkloadIdentity};
use crate::env::file::DbEngine;
use crate::k8s;
use crate::plan::{Action, Capability, Reach, StackStep, Wait};
use crate::refs::Expr;

/// Options for [`DatabaseLogin`].
#[derive(Debug, Clone)]
pub struct DatabaseLoginProps<'a> {
    /// Login (role) name, e.g. `langgraph_app`; on PostgreSQL also the name of the schema
    /// it owns.
    pub username: &'a str,
    /// Secrets Manager name of its password, e.g. `lgp-prod/database-app-password`.
    pub secret_path: &'a str,
    /// PostgreSQL extensions the login step creates for it (e.g. `vector`); they need the
    /// master user. None on MySQL.
    pub extensions: &'a [&'a str],
}

/// Terraform outputs of the login (added by [`DatabaseLogin::new`]).
const OUT_ADDRESS: &str = "db_address";
const OUT_MASTER: &str = "db_master_secret_arn";
const OUT_LOGIN: &str = "db_app_login_secret_arn";

/// An application login of one database.
#[derive(Debug, Clone)]
pub struct DatabaseLogin {
    engine: DbEngine,
    username: String,
    db_name: String,
    db_address: Expr,
    password: GeneratedSecret,
    password_path: String,
    master_secret_arn: Expr,
    instance_arn: String,
    sql: String,
}

impl DatabaseLogin {
    /// Creates the password secret for `props.username` on `db`, the outputs naming the
    /// database and both secrets, and the login's SQL ([`DatabaseLogin::sql`]).
    pub fn new(
        scope: &mut Scope<'_>,
        key: &KmsKey,
        db: &RdsInstance,
        props: &DatabaseLoginProps<'_>,
    ) -> Result<DatabaseLogin, String> {
        let engine = db.engine();
        // PostgreSQL identifiers are up to 63 bytes, MySQL user names up to 32 characters.
        let max_len = match engine {
            DbEngine::Postgres => 63,
            DbEngine::Mysql => 32,
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.len() <= max_len
                && s.starts_with(|c: char| c.is_ascii_lowercase())
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        if !valid(props.username) {
            return Err(format!(
                "database login `{}`: expected lowercase letters, digits and `_`, starting with a letter, at most {max_len} characters",
                props.username
            ));
        }
        if engine == DbEngine::Mysql && !props.extensions.is_empty() {
            return Err(format!(
                "database login `{}`: extensions are PostgreSQL's; a MySQL database has none",
                props.username
            ));
        }
        if let Some(bad) = props.extensions.iter().find(|e| !valid(e)) {
            return Err(format!(
                "database extension `{bad}`: expected a lowercase PostgreSQL identifier"
            ));
        }
        let password = GeneratedSecret::new(
            scope,
            key,
            "database_app_password",
            props.secret_path,
            &format!(
                "password of the application's own database login {}",
                props.username
            ),
        );
        let out = &mut *scope.tf;
        out.output(
            OUT_ADDRESS,
            &format!("{} writer host name", engine.display_name()),
            db.address(),
            false,
        );
        out.output(
            OUT_MASTER,
            "Secrets Manager ARN of the master credentials (RDS rotates them; administrators only)",
            db.secret_arn(),
            false,
        );
        out.output(
            OUT_LOGIN,
            &format!(
                "Secrets Manager ARN of the password of the application login {}",
                props.username
            ),
            password.arn(),
            false,
        );
        Ok(DatabaseLogin {
            engine,
            username: props.username.to_owned(),
            db_name: db.db_name().to_owned(),
            db_address: db.address(),
            password,
            password_path: props.secret_path.to_owned(),
            master_secret_arn: db.secret_arn(),
            instance_arn: db.instance_arn(scope),
            sql: match engine {
                DbEngine::Postgres => login_sql(props, db.db_name()),
                DbEngine::Mysql => mysql_login_sql(props.username, db.db_name()),
            },
        })
    }

    /// `postgres://<user>:<password>@<host>:5432/<db>?<query>` (`mysql://...:3306/...` on
    /// MySQL), for a composed secret. The password is a reference: no value is ever written
    /// to a file. It is letters and digits only, so it needs no URL escaping.
    pub fn url(&mut self, scope: &mut Scope<'_>, query: &str) -> String {
        format!(
            "{}://{}:{}@{}:{}/{}?{query}",
            self.engine.rds_name(),
            self.username,
            self.password.value(scope),
            self.db_address,
            self.engine.port(),
            self.db_name
        )
    }

    /// The database's engine.
    pub fn engine(&self) -> DbEngine {
        self.engine
    }

    /// ARN of the password secret.
    pub fn password_secret_arn(&self) -> Expr {
        self.password.arn()
    }

    /// Records that the password's secret resource was `old_id` before (see
    /// [`GeneratedSecret::moved_from`]).
    pub fn password_moved_from(&self, scope: &mut Scope<'_>, old_id: &str) {
        self.password.moved_from(scope, old_id);
    }

    /// The login name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The database's name.
    pub fn db_name(&self) -> &str {
        &self.db_name
    }

    /// The writer's host name.
    pub fn db_address(&self) -> Expr {
        self.db_address.clone()
    }

    /// Secrets Manager name of the login's password.
    pub fn password_path(&self) -> &str {
        &self.password_path
    }

    /// ARN of the RDS-managed master secret (the login step's only use of it).
    pub fn master_secret_arn(&self) -> Expr {
        self.master_secret_arn.clone()
    }

    /// The idempotent SQL of the login step, run by the engine's client as the master user
    /// with the login's password in `APP_PASSWORD` ([`db_client::run_lines`]).
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The Kubernetes Job that runs [`DatabaseLogin::sql`] in `job.namespace`, its reader
    /// role (read the master secret, the login's password and `job.host`'s secret, and
    /// nothing else), the store's ServiceAccount in the Job's namespace that alone may assume
    /// it (IRSA, [`super::secret_store::store_auth`]), and the plan step that applies them
    /// (`jobs/database-login/`, from inside the VPC) before the stack's workloads.
    pub fn cluster_job(
        &self,
        scope: &mut Scope<'_>,
        key: &KmsKey,
        job: &ClusterJob<'_>,
    ) -> Result<LoginJob, String> {
        let region = scope.tf.region().to_owned();
        let partition = scope.partition();
        let account = scope.tf.account_id().to_owned();
        let secret_arn = |path: &str| {
            format!("arn:{partition}:secretsmanager:{region}:{account}:secret:{path}-*")
        };
        let reader = WorkloadIdentity {
            id: "database_login_secrets_reader".to_owned(),
            role_suffix: "dblogin-secrets-reader".to_owned(),
            namespace: job.namespace.to_owned(),
            service_account: format!("{}-secrets", k8s::DATABASE_LOGIN),
            managed: vec![],
            statements: vec![
                Statement::allow(
                    "ReadLoginSecrets",
                    &[
                        "secretsmanager:GetSecretValue",
                        "secretsmanager:DescribeSecret",
                    ],
                    vec![
                        self.master_secret_arn.to_string(),
                        self.password.arn().to_string(),
                        secret_arn(job.host.path()),
                    ],
                ),
                // External Secrets finds the RDS-managed master secret (its name is random)
                // by its tag: these two actions support no resource-level permission;
                // values still need GetSecretValue on each secret, granted above.
                Statement::allow(
                    "FindMasterSecretByTag",
                    &[
                        "secretsmanager:BatchGetSecretValue",
                        "secretsmanager:ListSecrets",
                    ],
                    vec!["*".into()],
                ),
                Statement::allow(
                    "DecryptThroughSecretsManager",
                    &["kms:Decrypt"],
                    vec![key.arn().to_string()],
                )
                .when(
                    "StringEquals",
                    "kms:ViaService",
                    vec![format!("secretsmanager.{region}.amazonaws.com")],
                ),
            ],
        };
        reader.create(scope, &job.oidc);
        let instance = format!("{}-{}", job.stack, scope.env);
        let reader_account = reader
            .service_account_object(
                scope,
                &job.oidc,
                &k8s::database_login_labels(job.stack, &instance),
            )
            .map_err(|e| e.to_string())?;
        let auth =
            super::secret_store::store_auth(&reader, &job.oidc).map_err(|e| e.to_string())?;
        let props = k8s::DatabaseLoginJobProps {
            stack: job.stack.to_owned(),
            instance,
            namespace: job.namespace.to_owned(),
            engine: self.engine,
            image: db_client::image(self.engine).to_owned(),
            database: self.db_name.clone(),
            sql: self.sql.clone(),
            store: k8s::AwsSecretStore {
                region: region.clone(),
                auth,
            },
            master_secret_tags: std::collections::BTreeMap::from([(
                k8s::RDS_PRIMARY_INSTANCE_TAG.to_owned(),
                self.instance_arn.clone(),
            )]),
            password_secret: self.password_path.clone(),
            host_secret: job.host.clone(),
            data_subnet_cidrs: job.data_subnet_cidrs.to_vec(),
            dns_namespace: "kube-system".to_owned(),
        };
        let (mut objects, job_name) = k8s::database_login(&props).map_err(|e| e.to_string())?;
        // The folder is applied before the stack's `k8s/` (which needs the login), so it
        // carries the namespace too: the same object, applied twice, changes nothing.
        objects.insert(0, reader_account);
        objects.insert(0, job.namespace_object.clone());
        let step = StackStep {
            name: k8s::DATABASE_LOGIN.to_owned(),
            action: Action::KubectlApply { dir: job_dir() },
            reach: Reach::Vpc,
            provides: vec![Capability::DatabaseLogin(
                job.stack.to_owned(),
                self.username.clone(),
            )],
            requires: vec![Capability::ApiGroup("external-secrets.io".to_owned())],
            waits: vec![Wait::JobComplete(job.namespace.to_owned(), job_name)],
            // The Job sets the password from this Secret: it must hold the current value.
            sync_before: vec![(job.namespace.to_owned(), k8s::DATABASE_LOGIN.to_owned())],
        };
        Ok(LoginJob { objects, step })
    }
}

/// The folder of the login Job under `generated/<env>/<stack>/`: `jobs/database-login`.
pub fn job_dir() -> String {
    format!("jobs/{}", k8s::DATABASE_LOGIN)
}

/// Where the login Job of a stack on the cluster runs.
#[derive(Debug, Clone)]
pub struct ClusterJob<'a> {
    /// The stack's name.
    pub stack: &'a str,
    /// The stack's namespace.
    pub namespace: &'a str,
    /// The Namespace object the stack's `k8s/` creates (also applied with the Job).
    pub namespace_object: k8s::Object,
    /// The secret the writer's host name is read from (the application's `DATABASE_URL`,
    /// or a secret holding only the host).
    pub host: k8s::HostSecret,
    /// The data subnets' CIDRs (the Job's only egress besides DNS).
    pub data_subnet_cidrs: &'a [String],
    /// How the store's ServiceAccount gets the reader role: IRSA through the cluster's
    /// OIDC provider (the trust names exactly that namespace and ServiceAccount).
    pub oidc: Mechanism,
}

/// The login Job's objects (for `jobs/database-login/`) and its plan step.
#[derive(Debug, Clone)]
pub struct LoginJob {
    /// Namespace, the store's ServiceAccount, SecretStore, ExternalSecret, NetworkPolicy, Job.
    pub objects: Vec<k8s::Object>,
    /// The step that applies them and waits for the Job.
    pub step: StackStep,
}

/// The SQL of the login step: creates the role if missing, (re)sets its password from
/// `APP_PASSWORD`, owns its schema. Idempotent.
fn login_sql(props: &DatabaseLoginProps<'_>, db_name: &str) -> String {
    let user = props.username;
    let extensions: String = props
        .extensions
        .iter()
        .map(|e| format!("CREATE EXTENSION IF NOT EXISTS {e};\n"))
        .collect();
    format!(
        r#"\getenv app_password APP_PASSWORD
SELECT 'CREATE ROLE {user}' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{user}') \gexec
ALTER ROLE {user} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'app_password';
{extensions}REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CONNECT ON DATABASE {db_name} TO {user};
CREATE SCHEMA IF NOT EXISTS {user} AUTHORIZATION {user};
ALTER ROLE {user} IN DATABASE {db_name} SET search_path = "$user", public;
SELECT 'login {user} is ready on {db_name}';
"#
    )
}

/// The MySQL SQL of the login step: creates the user if missing, (re)sets its password from
/// the session variable `@app_password` ([`db_client::run_lines`] sets it; `CREATE USER`
/// takes no variable, hence the prepared statements), requires TLS of it, and grants it
/// the data and schema privileges on its database only (no global privilege, no `GRANT
/// OPTION`). Idempotent.
fn mysql_login_sql(user: &str, db_name: &str) -> String {
    format!(
        r#"SET @create_login = CONCAT('CREATE USER IF NOT EXISTS ''{user}''@''%'' IDENTIFIED BY ''', @app_password, ''' REQUIRE SSL');
PREPARE login_stmt FROM @create_login;
EXECUTE login_stmt;
DEALLOCATE PREPARE login_stmt;
SET @alter_login = CONCAT('ALTER USER ''{user}''@''%'' IDENTIFIED BY ''', @app_password, ''' REQUIRE SSL');
PREPARE login_stmt FROM @alter_login;
EXECUTE login_stmt;
DEALLOCATE PREPARE login_stmt;
SET @app_password = NULL, @create_login = NULL, @alter_login = NULL;
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP, REFERENCES, CREATE TEMPORARY TABLES, LOCK TABLES, CREATE VIEW, SHOW VIEW, TRIGGER, EXECUTE, CREATE ROUTINE, ALTER ROUTINE ON {db_name}.* TO '{user}'@'%';
SELECT 'login {user} is ready on {db_name}';
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_reads_the_password_at_run_time_and_is_idempotent() {
        let props = DatabaseLoginProps {
            username: "langgraph_app",
            secret_path: "lgp-prod/database-app-password",
            extensions: &["vector"],
        };
        let sql = login_sql(&props, "langgraph");
        assert!(sql.starts_with("\\getenv app_password APP_PASSWORD\n"));
        assert!(sql.contains("PASSWORD :'app_password'"));
        assert!(sql.contains("WHERE NOT EXISTS (SELECT FROM pg_roles"));
        assert!(sql.contains("CREATE EXTENSION IF NOT EXISTS vector;"));
        assert!(sql.contains("NOSUPERUSER NOCREATEDB NOCREATEROLE"));
        assert!(
            sql.contains("CREATE SCHEMA IF NOT EXISTS langgraph_app AUTHORIZATION langgraph_app;")
        );
    }

    #[test]
    fn mysql_sql_reads_the_password_from_the_session_and_grants_one_database() {
        let sql = mysql_login_sql("craic_app", "whatsthecraic");
        assert!(sql.contains(
            "CREATE USER IF NOT EXISTS ''craic_app''@''%'' IDENTIFIED BY ''', @app_password"
        ));
        assert!(sql.contains(
            "ALTER USER ''craic_app''@''%'' IDENTIFIED BY ''', @app_password, ''' REQUIRE SSL'"
        ));
        assert!(sql.contains(" ON whatsthecraic.* TO 'craic_app'@'%';"));
        assert!(!sql.contains("GRANT OPTION") && !sql.contains("ON *.*"));
        // Every statement ends its line; nothing but the session variable carries the secret.
        assert!(sql.lines().all(|l| l.ends_with(';')), "{sql}");
        assert!(!sql.contains("APP_PASSWORD"));
    }
}
