//! One writer at a time: an advisory lock on the project's root folder.
//!
//! `synth` holds it exclusively from reading the environment files to the last rename, so two
//! runs on one tree cannot interleave (the second says it waits, then waits); `check` and
//! `list` hold it shared, so they never read a tree in the middle of a swap. The lock is the
//! operating system's (`flock` on the folder itself): it writes nothing, works on a read-only
//! tree, and is released when the process exits, however it exits.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct Lock {
    _dir: File,
    path: PathBuf,
}

impl Lock {
    /// The locked folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// How a lock is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Writers: one at a time, and no reader meanwhile.
    Exclusive,
    /// Readers: any number at once, no writer meanwhile.
    Shared,
}

/// Locks the folder `dir`, calling `waiting` once if another process holds the lock, then
/// waiting for it.
pub fn lock(dir: &Path, mode: Mode, waiting: impl FnOnce(&Path)) -> Result<Lock> {
    let file = File::open(dir).with_context(|| format!("opening {} to lock it", dir.display()))?;
    let tried = match mode {
        Mode::Exclusive => file.try_lock(),
        Mode::Shared => file.try_lock_shared(),
    };
    match tried {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            waiting(dir);
            match mode {
                Mode::Exclusive => file.lock(),
                Mode::Shared => file.lock_shared(),
            }
            .with_context(|| format!("waiting for the lock on {}", dir.display()))?;
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", dir.display()));
        }
    }
    Ok(Lock {
        _dir: file,
        path: dir.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_exclusive_lock_waits_and_shared_locks_coexist() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let first = lock(&dir, Mode::Exclusive, |_| panic!("the lock is free")).unwrap();
        // Another open file description contends like another process would.
        let (tx, rx) = std::sync::mpsc::channel();
        let other = dir.clone();
        let second = std::thread::spawn(move || {
            let held = lock(&other, Mode::Exclusive, |p| tx.send(p.to_owned()).unwrap()).unwrap();
            drop(held);
        });
        // The second one says that it waits (this blocks until it does).
        assert_eq!(rx.recv().unwrap(), dir);
        drop(first);
        second.join().unwrap();
        let a = lock(&dir, Mode::Shared, |_| panic!("shared locks coexist")).unwrap();
        let b = lock(&dir, Mode::Shared, |_| panic!("shared locks coexist")).unwrap();
        assert_eq!(a.path(), b.path());
    }
}
