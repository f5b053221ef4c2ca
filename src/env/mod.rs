//! Environments: `environments/<env>.yaml` → validated [`Env`].
//!
//! `file` holds the serde/schemars shape, `load` parses and validates (schema first, then
//! `check`'s semantic rules), and [`Env`] offers the derived values stacks need.

pub mod adopt;
pub mod check;
pub mod file;
pub mod kubernetes_support;
pub mod load;
pub mod names;
pub mod schema_cache;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use file::{EnvFile, Tier};
pub use load::{EnvError, EnvErrors, load_file, load_str, schema};

/// A validated environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Env {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// Its validated contents.
    pub spec: EnvFile,
}

impl Env {
    /// Environment name (`prod`).
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Availability zone names, `<region>a`, `<region>b`, ... (`az_count` of them).
    pub fn availability_zones(&self) -> Vec<String> {
        (0..self.spec.network.az_count)
            .map(|i| format!("{}{}", self.spec.region, char::from(b'a' + i)))
            .collect()
    }

    /// Tags every resource of `stack` carries (provider `default_tags`).
    pub fn default_tags(&self, stack: &str) -> BTreeMap<String, String> {
        let mut tags = self.spec.tags.clone();
        tags.insert("Environment".into(), self.spec.name.clone());
        tags.insert("Stack".into(), stack.to_owned());
        tags.insert("ManagedBy".into(), "keel".into());
        tags
    }

    /// The S3 backend of `stack` in this environment.
    pub fn backend(&self, stack: &str) -> crate::tf::S3Backend {
        let s = &self.spec.state;
        crate::tf::S3Backend {
            bucket: s.bucket.clone(),
            key: format!(
                "{}/{stack}/terraform.tfstate",
                s.key_prefix.trim_end_matches('/')
            ),
            region: s.region.clone().unwrap_or_else(|| self.spec.region.clone()),
            encrypt: s.encrypt,
            use_lockfile: s.use_lockfile,
        }
    }

    /// Whether this is a prod-tier environment.
    pub fn is_prod(&self) -> bool {
        self.spec.tier == Tier::Prod
    }

    /// Days to keep audit-grade logs (EKS control-plane and audit logs, container logs, ECS
    /// exec sessions) in this tier: a year in prod (audit scope), 90 days in staging, 30 in
    /// dev (nothing there is evidence, and ingestion and storage are paid per GB).
    pub fn audit_log_retention_days(&self) -> u32 {
        match self.spec.tier {
            Tier::Prod => 365,
            Tier::Staging => 90,
            Tier::Dev => 30,
        }
    }

    /// Days to keep a data store's exported logs (a database's error and slow-query logs, a
    /// cache's logs): a year in prod (audit scope), 30 days elsewhere.
    pub fn database_log_retention_days(&self) -> u32 {
        if self.is_prod() { 365 } else { 30 }
    }

    /// The `kubernetes` section, which every stack on a cluster needs.
    pub fn kubernetes(&self) -> Result<&file::Kubernetes, String> {
        self.spec
            .kubernetes
            .as_ref()
            .ok_or_else(|| "the environment has no `kubernetes` section".to_owned())
    }
}

/// Every `*.yaml` file in `dir`, sorted by name.
pub fn env_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Loads every environment in `dir`, collecting all errors of all files.
pub fn load_all(dir: &Path) -> Result<Vec<Env>, EnvErrors> {
    let files = env_files(dir).map_err(|e| {
        EnvErrors(vec![EnvError {
            file: dir.to_owned(),
            key: String::new(),
            position: None,
            message: format!("cannot list environment files: {e}"),
        }])
    })?;
    let mut envs = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match load_file(&f) {
            Ok(env) => envs.push(env),
            Err(EnvErrors(e)) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(envs)
    } else {
        Err(EnvErrors(errors))
    }
}
