//! Which environment files already passed the JSON Schema, so that an unchanged file is not
//! checked again: compiling the validator costs more than everything else a one-stack synth
//! does (about 6 of 11 ms of CPU; see scripts/bench-synth.sh, which prints both figures).
//!
//! The record of environment `prod` is `.keel/schema-valid/prod` in the project, holding the
//! SHA-256 of keel's version, the schema's identity and the file's bytes: a change to any of the three
//! gives another digest, so the record can never vouch for a file it did not see. A record is
//! written only after the file loaded without errors, replaced by rename (a reader never sees
//! half of one), and never needed: a missing, unreadable or unwritable record only means the
//! schema runs, as it always did. Every error message is the schema's, since a file the
//! record does not match is checked in full.
//!
//! Off when `KEEL_SCHEMA_CACHE=off`, and off when `CI` is set: a CI checkout is fresh, and a
//! record committed by a pull request must not let its files skip the schema.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The schema built into this binary, identified at compile time (FNV-1a 64 of its text;
/// the schema is keel's own, not an attacker's choice, and hashing 51 KB at every start
/// would cost more than the rest of the digest).
const SCHEMA_ID: u64 = {
    let bytes = super::load::COMMITTED_SCHEMA.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
};

/// The project's schema-check records (or none, when turned off).
#[derive(Debug, Clone)]
pub struct SchemaCache {
    dir: Option<PathBuf>,
}

/// Where records live, under the project root (`.gitignore` lists `.keel/`).
pub const DIR: &str = ".keel/schema-valid";

impl SchemaCache {
    /// The records of the project at `root`, unless the environment turns them off.
    pub fn in_project(root: &Path) -> Self {
        let off = std::env::var_os("KEEL_SCHEMA_CACHE").is_some_and(|v| v == "off")
            || std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        SchemaCache {
            dir: (!off).then(|| root.join(DIR)),
        }
    }

    /// No records: every file is checked.
    pub fn off() -> Self {
        SchemaCache { dir: None }
    }

    /// The digest that names this exact file checked by this keel against this schema.
    pub fn digest(bytes: &[u8]) -> String {
        let mut hasher = Sha256::new();
        let version = env!("CARGO_PKG_VERSION");
        hasher.update((version.len() as u64).to_le_bytes());
        hasher.update(version);
        hasher.update(SCHEMA_ID.to_le_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The records' folder, unless it or `.keel/` is a symbolic link (a record read or
    /// written through one would leave the project).
    fn real_dir(&self) -> Option<&Path> {
        let dir = self.dir.as_deref()?;
        let keel = dir.parent()?;
        let root = keel.parent()?;
        crate::inputs::first_link(root, dir)
            .is_none()
            .then_some(dir)
    }

    /// Whether environment `env`'s file with this digest passed the schema before. Only a
    /// regular file of exactly one digest and a newline counts: anything else a pull request
    /// can commit there (a FIFO, a link to `/dev/zero`, a huge sparse file) means no record.
    pub fn holds(&self, env: &str, digest: &str) -> bool {
        let Some(dir) = self.real_dir() else {
            return false;
        };
        let expected = format!("{digest}\n");
        match crate::inputs::open_regular(&dir.join(env)) {
            Ok((file, size)) if size == expected.len() as u64 => {
                let mut text = Vec::with_capacity(expected.len());
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(file, expected.len() as u64),
                    &mut text,
                )
                .is_ok_and(|_| text == expected.as_bytes())
            }
            _ => false,
        }
    }

    /// Records that environment `env`'s file with this digest passed (best effort: a
    /// read-only or full disk, or a linked `.keel/`, just leaves no record).
    pub fn record(&self, env: &str, digest: &str) {
        let Some(dir) = self.real_dir() else { return };
        if std::fs::create_dir_all(dir).is_err() || self.real_dir().is_none() {
            return;
        }
        // Unique per process and call: threads of one process may record at once.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temporary = dir.join(format!(".{env}.{}.{call}", std::process::id()));
        if std::fs::write(&temporary, format!("{digest}\n")).is_err()
            || std::fs::rename(&temporary, dir.join(env)).is_err()
        {
            let _ = std::fs::remove_file(&temporary);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_vouches_for_the_same_bytes_only() {
        let root = tempfile::tempdir().expect("temp dir");
        let cache = SchemaCache {
            dir: Some(root.path().join(DIR)),
        };
        let digest = SchemaCache::digest(b"name: prod\n");
        assert!(!cache.holds("prod", &digest));
        cache.record("prod", &digest);
        assert!(cache.holds("prod", &digest));
        assert!(!cache.holds("staging", &digest));
        assert!(!cache.holds("prod", &SchemaCache::digest(b"name: prod\n\n")));
        // A changed file replaces the record.
        let changed = SchemaCache::digest(b"name: prod\ntier: prod\n");
        cache.record("prod", &changed);
        assert!(!cache.holds("prod", &digest));
        assert!(cache.holds("prod", &changed));
        // Only the records, no temporary files, are left behind.
        let names: Vec<_> = std::fs::read_dir(root.path().join(DIR))
            .expect("records")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["prod"]);
    }

    #[test]
    fn turned_off_it_holds_nothing_and_writes_nothing() {
        let root = tempfile::tempdir().expect("temp dir");
        let cache = SchemaCache::off();
        let digest = SchemaCache::digest(b"x");
        cache.record("prod", &digest);
        assert!(!cache.holds("prod", &digest));
        assert!(!root.path().join(".keel").exists());
    }

    #[test]
    fn the_digest_is_sha256_over_length_prefixed_parts() {
        let a = SchemaCache::digest(b"ab");
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, SchemaCache::digest(b"ab"));
        assert_ne!(a, SchemaCache::digest(b"a"));
    }
}
