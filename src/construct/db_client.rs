//! The database client the login steps run, per engine: its image (pinned by digest), the
//! user it runs as, how it fetches the RDS CA bundle, and the shell that runs the login's
//! SQL as the RDS master user with full TLS verification ([`super::rds_tls`]).
//!
//! Both login steps use it: the Kubernetes Job ([`crate::k8s::database_login`]) reads the
//! credentials from its mounted Secret into [`credential_vars`], the ECS task
//! ([`super::db_login_task`]) has ECS inject them under the same names.

use super::rds_tls::{self, Downloader, LOGIN_STEP_BUNDLE};
use crate::env::file::DbEngine;

/// The PostgreSQL client image of the login step: `postgres:17-alpine` pinned by the index
/// digest that public repositories pin (not re-resolved from the registry here).
pub const POSTGRES_CLIENT_IMAGE: &str = "docker.io/library/postgres:17-alpine@sha256:742f40ea20b9ff2ff31db5458d127452988a2164df9e17441e191f3b72252193";

/// The MySQL client image of the login step: `mysql:8.4` (its client speaks to 8.0 and
/// 8.4 servers), pinned by the digest that public repositories pin for that tag (not
/// re-resolved from the registry here). Oracle Linux slim: `curl`, no busybox `wget`.
pub const MYSQL_CLIENT_IMAGE: &str = "docker.io/library/mysql:8.4@sha256:b3b90af2a6552ae30c266fdb7d5dd55f3afb72404bb78d37fe8a23eb857fd3fb";

/// The client image of `engine`'s login step.
pub fn image(engine: DbEngine) -> &'static str {
    match engine {
        DbEngine::Postgres => POSTGRES_CLIENT_IMAGE,
        DbEngine::Mysql => MYSQL_CLIENT_IMAGE,
    }
}

/// The client program (`psql`, `mysql`).
pub fn program(engine: DbEngine) -> &'static str {
    match engine {
        DbEngine::Postgres => "psql",
        DbEngine::Mysql => "mysql",
    }
}

/// User and group the client runs as: the image's own account (`postgres` is 70 in the
/// Alpine PostgreSQL image, `mysql` 999 in the MySQL image), so the client finds its user.
pub fn uid(engine: DbEngine) -> i64 {
    match engine {
        DbEngine::Postgres => 70,
        DbEngine::Mysql => 999,
    }
}

/// Why that uid is below 10000 (Checkov's `CKV_K8S_40`).
pub fn uid_reason(engine: DbEngine) -> &'static str {
    match engine {
        DbEngine::Postgres => {
            "uid 70 is the postgres account of the Alpine PostgreSQL image (libpq looks up the running user); the pod is non-root with no capabilities"
        }
        DbEngine::Mysql => {
            "uid 999 is the mysql account of the MySQL image (the client looks up the running user); the pod is non-root with no capabilities"
        }
    }
}

/// Names of the variables holding the writer's host name, the master user and its
/// password (the login's password is always `APP_PASSWORD`).
pub fn credential_vars(engine: DbEngine) -> [&'static str; 3] {
    match engine {
        DbEngine::Postgres => ["PGHOST", "PGUSER", "PGPASSWORD"],
        DbEngine::Mysql => ["DB_HOST", "DB_MASTER_USER", "DB_MASTER_PASSWORD"],
    }
}

/// The client's fixed environment for database `db_name`: libpq's variables for
/// PostgreSQL (database, port, TLS), only `HOME` for MySQL (its options are on the
/// command line, [`run_lines`]).
pub fn env(engine: DbEngine, db_name: &str) -> Vec<(&'static str, String)> {
    let mut env = vec![("HOME", "/tmp".to_owned())];
    if engine == DbEngine::Postgres {
        env.extend([
            ("PGCONNECT_TIMEOUT", "10".to_owned()),
            ("PGDATABASE", db_name.to_owned()),
            ("PGPORT", engine.port().to_string()),
        ]);
        // The server's certificate and name are verified against the bundle fetched first.
        env.extend(
            rds_tls::libpq_env(LOGIN_STEP_BUNDLE)
                .iter()
                .map(|(k, v)| (*k, (*v).to_owned())),
        );
    }
    env
}

/// Shell lines that fetch the RDS CA bundle with the image's own HTTP client.
pub fn fetch_lines(engine: DbEngine) -> String {
    let downloader = match engine {
        DbEngine::Postgres => Downloader::Wget,
        DbEngine::Mysql => Downloader::Curl,
    };
    rds_tls::fetch_lines_with(downloader, LOGIN_STEP_BUNDLE.path())
}

/// Where the MySQL client's option file with the master credentials goes (the writable
/// `/tmp`, mode 600): a password on the command line would show in the process list.
const MYSQL_OPTION_FILE: &str = "/tmp/master.cnf";

/// Shell lines that run `sql` as the master user, once [`credential_vars`] and
/// `APP_PASSWORD` are set: psql with `\getenv` for PostgreSQL; for MySQL, which has no
/// such command, the login's password (generated letters and digits, checked here) goes
/// into a session variable the SQL reads, and the master credentials into an option file.
pub fn run_lines(engine: DbEngine, db_name: &str, sql: &str) -> String {
    match engine {
        DbEngine::Postgres => format!("psql -X -v ON_ERROR_STOP=1 <<'SQL'\n{sql}SQL\n"),
        DbEngine::Mysql => {
            let [host, user, password] = credential_vars(engine);
            format!(
                r#"case "$APP_PASSWORD" in ''|*[!A-Za-z0-9]*) echo 'the login password must be letters and digits only' >&2; exit 1 ;; esac
umask 077
printf '[client]\nhost=%s\nuser=%s\npassword="%s"\n' "${host}" "${user}" "$(printf '%s' "${password}" | sed 's/\\/\\\\/g')" > {MYSQL_OPTION_FILE}
{{ printf "SET @app_password = '%s';\n" "$APP_PASSWORD"; cat <<'SQL'
{sql}SQL
}} | mysql --defaults-extra-file={MYSQL_OPTION_FILE} --port={port} {tls} --connect-timeout=10 --batch --database={db_name}
"#,
                port = engine.port(),
                tls = rds_tls::mysql_options(LOGIN_STEP_BUNDLE),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parses(script: &str) -> bool {
        std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(script)
            .status()
            .unwrap()
            .success()
    }

    #[test]
    fn images_are_pinned_by_digest() {
        for engine in [DbEngine::Postgres, DbEngine::Mysql] {
            let (_, digest) = image(engine).split_once("@sha256:").unwrap();
            assert_eq!(digest.len(), 64, "{engine:?}");
            assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn mysql_runs_with_full_verification_and_no_password_in_its_arguments() {
        let run = run_lines(DbEngine::Mysql, "whatsthecraic", "SELECT 1;\n");
        assert!(run.contains("--ssl-mode=VERIFY_IDENTITY --ssl-ca=/tmp/rds-global-bundle.pem"));
        assert!(run.contains("--port=3306"));
        assert!(run.contains("--database=whatsthecraic"));
        assert!(run.starts_with("case \"$APP_PASSWORD\" in ''|*[!A-Za-z0-9]*)"));
        assert!(!run.contains("--password"));
        assert!(fetch_lines(DbEngine::Mysql).starts_with("curl "));
        let script = format!("set -eu\n{}{run}", fetch_lines(DbEngine::Mysql));
        assert!(parses(&script), "{script}");
    }

    #[test]
    fn the_mysql_option_file_escapes_backslashes_and_keeps_the_password_whole() {
        // Run the option-file line alone, with a master password holding what RDS may
        // generate (no `"`, `/`, `@` or space).
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("master.cnf");
        let run = run_lines(DbEngine::Mysql, "db", "");
        let line = run
            .lines()
            .find(|l| l.starts_with("printf '[client]"))
            .unwrap()
            .replace(MYSQL_OPTION_FILE, file.to_str().unwrap());
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .env("DB_HOST", "db.example")
            .env("DB_MASTER_USER", "craic_admin")
            .env("DB_MASTER_PASSWORD", r"a\b#c'd$e")
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "[client]\nhost=db.example\nuser=craic_admin\npassword=\"a\\\\b#c'd$e\"\n"
        );
    }

    #[test]
    fn postgres_keeps_libpq_variables() {
        let env = env(DbEngine::Postgres, "analytics");
        assert!(env.contains(&("PGSSLMODE", "verify-full".to_owned())));
        assert!(env.contains(&("PGPORT", "5432".to_owned())));
        assert_eq!(credential_vars(DbEngine::Postgres)[0], "PGHOST");
        assert!(parses(&run_lines(DbEngine::Postgres, "a", "SELECT 1;\n")));
    }
}
