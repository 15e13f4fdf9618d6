//! Keeping the compile cache within its size cap.
//!
//! Every new component version adds an entry (tens of MB for a JavaScript
//! or Python component), and so does every engine upgrade, so without a
//! cap the cache grows for ever. After each write the least recently used
//! entries are removed until the directory fits its cap again; a load
//! marks its entry as used (its modification time). Temporary files left
//! by a process that died mid-write are removed once they are old enough
//! that no live writer can own them. Several processes may share one
//! directory: an entry another one removes first is simply gone, and an
//! entry removed while another process maps it stays readable to it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// File name suffix of a cache entry.
pub(super) const ENTRY_SUFFIX: &str = ".cwasm";
/// File name suffix of a write in progress (the name also starts with `.`).
pub(super) const TMP_SUFFIX: &str = ".tmp";
/// A temporary file older than this was left by a writer that died.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// What one [`trim`] removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Trimmed {
    /// Entries removed to fit the cap.
    pub entries: usize,
    /// Their total size.
    pub bytes: u64,
    /// Stale temporary files removed.
    pub stale_tmp: usize,
}

/// Remove least recently used entries of `dir` until they total at most
/// `max_bytes`, never `keep` (the entry just written); and remove stale
/// temporary files. Files that are neither are left alone.
pub(super) fn trim(dir: &Path, max_bytes: u64, keep: &Path) -> io::Result<Trimmed> {
    let now = SystemTime::now();
    let mut trimmed = Trimmed::default();
    let mut entries: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
    for item in fs::read_dir(dir)? {
        let item = item?;
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        let Ok(meta) = item.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let modified = meta.modified().unwrap_or(now);
        if name.starts_with('.') && name.ends_with(TMP_SUFFIX) {
            let age = now.duration_since(modified).unwrap_or_default();
            if age > STALE_TMP && remove(&item.path())? {
                trimmed.stale_tmp += 1;
            }
        } else if name.ends_with(ENTRY_SUFFIX) {
            entries.push((modified, meta.len(), item.path()));
        }
    }
    let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
    entries.sort();
    for (_, len, path) in entries {
        if total <= max_bytes {
            break;
        }
        if path == keep {
            continue;
        }
        if remove(&path)? {
            trimmed.entries += 1;
            trimmed.bytes += len;
        }
        total -= len;
    }
    Ok(trimmed)
}

/// Mark the entry at `path` as just used, so trimming keeps it longest.
pub(super) fn touch(path: &Path) -> io::Result<()> {
    fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(SystemTime::now())
}

/// Remove a file; one already gone (another process trimmed it) is not an
/// error. Returns whether this call removed it.
fn remove(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Write `len` bytes at `dir/name`, last modified `age_s` seconds ago.
    fn file(dir: &Path, name: &str, len: usize, age_s: u64) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, vec![0u8; len]).unwrap();
        let when = SystemTime::now() - Duration::from_secs(age_s);
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(when)
            .unwrap();
        path
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn removes_least_recently_used_entries_down_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        file(d, "a.cwasm", 100, 40);
        file(d, "b.cwasm", 100, 30);
        file(d, "c.cwasm", 100, 20);
        let new = file(d, "d.cwasm", 100, 0);
        let trimmed = trim(d, 250, &new).unwrap();
        assert_eq!(
            trimmed,
            Trimmed {
                entries: 2,
                bytes: 200,
                stale_tmp: 0
            }
        );
        assert_eq!(names(d), ["c.cwasm", "d.cwasm"]);
        // Within the cap: nothing more goes.
        assert_eq!(trim(d, 250, &new).unwrap(), Trimmed::default());
        assert_eq!(names(d), ["c.cwasm", "d.cwasm"]);
    }

    #[test]
    fn a_touched_entry_outlives_newer_ones_and_the_one_kept_survives_alone() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let old = file(d, "old.cwasm", 100, 50);
        file(d, "mid.cwasm", 100, 30);
        touch(&old).unwrap();
        let new = file(d, "new.cwasm", 100, 0);
        trim(d, 200, &new).unwrap();
        assert_eq!(names(d), ["new.cwasm", "old.cwasm"]);
        // An entry bigger than the cap by itself is kept when it is the
        // one just written; everything else goes.
        trim(d, 50, &new).unwrap();
        assert_eq!(names(d), ["new.cwasm"]);
    }

    #[test]
    fn stale_temporary_files_go_and_other_files_stay() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        file(d, ".x.1.a.tmp", 10, 2 * 3600);
        file(d, ".y.2.b.tmp", 10, 60);
        file(d, "notes.txt", 1000, 9999);
        let keep = file(d, "k.cwasm", 10, 0);
        let trimmed = trim(d, 1, &keep).unwrap();
        assert_eq!(trimmed.stale_tmp, 1);
        assert_eq!(names(d), [".y.2.b.tmp", "k.cwasm", "notes.txt"]);
    }
}
