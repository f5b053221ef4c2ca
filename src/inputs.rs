//! Reading files of the project tree, which a pull request controls: never through a
//! symbolic link (a committed link can point at `~/.git-credentials` or `/dev/zero`), never
//! anything but a regular file (a FIFO blocks the reader forever), never more than a bound.
//!
//! The path is checked with `lstat` (a link, a folder, a device or a pipe is refused before it
//! is opened, so opening cannot block), then the opened handle with `fstat`: it must be the
//! same regular file, so a file swapped for a link in between is refused too.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Why a file was not read.
#[derive(Debug)]
pub enum Refused {
    /// The path is a symbolic link.
    Link,
    /// The path is a folder, a device, a FIFO or a socket.
    NotRegular,
    /// The file holds more than the bound (its size in bytes).
    TooLarge(u64),
    /// Opening or reading failed.
    Io(io::Error),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Link => f.write_str(
                "is a symbolic link; keel reads only regular files inside the project (a \
                 link can point anywhere, e.g. at credentials): replace the link with the file",
            ),
            Refused::NotRegular => {
                f.write_str("expected a regular file, found a directory, device or pipe")
            }
            Refused::TooLarge(size) => write!(f, "the file is too large ({size} bytes)"),
            Refused::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Opens the regular file `path` for reading without following a link; returns it with its
/// size.
pub fn open_regular(path: &Path) -> Result<(File, u64), Refused> {
    let before = fs::symlink_metadata(path).map_err(Refused::Io)?;
    if before.file_type().is_symlink() {
        return Err(Refused::Link);
    }
    if !before.is_file() {
        return Err(Refused::NotRegular);
    }
    let file = File::open(path).map_err(Refused::Io)?;
    let opened = file.metadata().map_err(Refused::Io)?;
    if !opened.is_file() || (opened.dev(), opened.ino()) != (before.dev(), before.ino()) {
        // Swapped between the two looks: what was opened is not what was checked.
        return Err(Refused::Link);
    }
    Ok((file, opened.len()))
}

/// The bytes of the regular file `path`, refused when it holds more than `max` bytes (checked
/// before reading, and again while reading in case it grows).
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, Refused> {
    let (file, size) = open_regular(path)?;
    if size > max {
        return Err(Refused::TooLarge(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(Refused::Io)?;
    if bytes.len() as u64 > max {
        return Err(Refused::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The first symbolic link on the way from `root` to `path` (`path` inside `root`, both as
/// given), `path` itself included; `root` itself is the user's choice and not checked.
pub fn first_link(root: &Path, path: &Path) -> Option<PathBuf> {
    let rel = path.strip_prefix(root).ok()?;
    let mut at = root.to_path_buf();
    for part in rel.components() {
        if let Component::Normal(name) = part {
            at.push(name);
            match fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => return Some(at),
                Ok(_) => {}
                // What does not exist yet is no link.
                Err(_) => return None,
            }
        }
    }
    None
}

/// Every symbolic link under the folder `dir` (not following links; `dir` missing: none).
pub fn links_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_symlink() => out.push(entry.path()),
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_bound_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a");
        fs::write(&file, "abc").unwrap();
        assert_eq!(read_regular(&file, 3).unwrap(), b"abc");
        assert!(matches!(read_regular(&file, 2), Err(Refused::TooLarge(3))));
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(matches!(read_regular(&link, 10), Err(Refused::Link)));
        assert!(matches!(
            read_regular(tmp.path(), 10),
            Err(Refused::NotRegular)
        ));
        assert!(matches!(
            read_regular(&tmp.path().join("missing"), 10),
            Err(Refused::Io(_))
        ));
    }

    #[test]
    fn links_are_found_on_the_way_and_below() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("g/real/deep")).unwrap();
        std::os::unix::fs::symlink(root.join("g/real"), root.join("g/link")).unwrap();
        std::os::unix::fs::symlink(root, root.join("g/real/deep/up")).unwrap();
        assert_eq!(first_link(root, &root.join("g/real/x")), None);
        assert_eq!(
            first_link(root, &root.join("g/link/x")),
            Some(root.join("g/link"))
        );
        assert_eq!(
            links_under(&root.join("g")),
            [root.join("g/link"), root.join("g/real/deep/up")]
        );
    }
}
