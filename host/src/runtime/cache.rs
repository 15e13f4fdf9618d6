//! On-disk cache of compiled components.
//!
//! Compiling a 12 MB JavaScript component takes seconds; loading its
//! precompiled form takes milliseconds. Entries are keyed by the SHA-256 of
//! the component bytes and a hash of every engine setting that affects code
//! generation, so a changed engine never loads stale code. Writes go to a
//! temporary file that is renamed into place, so a crash never leaves a
//! half-written entry under a real key. The cache keeps to a size cap,
//! dropping the least recently used entries (`cache_trim`).
//!
//! An entry is native code, loaded with no check of its own (wasmtime
//! checks only that its header matches the engine), so whoever can write
//! one can run code in the host. The directory is created private (0700),
//! and a directory or entry that another user owns, or that group or
//! others may write, is not used: the component is compiled instead.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::cache_trim::{ENTRY_SUFFIX, TMP_SUFFIX, touch, trim};

/// A directory of precompiled components for one engine configuration.
pub(crate) struct ComponentCache {
    dir: PathBuf,
    engine_key: String,
    max_bytes: u64,
}

/// Whether a file or directory may hold code this process runs: owned by
/// this process's user (or root), and writable by no one else.
fn trusted(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    let me = unsafe { libc::geteuid() };
    (meta.uid() == me || meta.uid() == 0) && meta.mode() & 0o022 == 0
}

/// Why the cache directory `dir` must not be used, if it must not.
fn untrusted_dir(dir: &Path) -> Option<&'static str> {
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => Some("it is not a directory"),
        Ok(meta) if !trusted(&meta) => {
            Some("another user owns it, or group or others may write it")
        }
        // Missing: created private when the first entry is written.
        _ => None,
    }
}

impl ComponentCache {
    /// A cache in `dir` for `engine`'s code, holding at most `max_bytes`.
    pub(crate) fn new(dir: PathBuf, engine: &Engine, max_bytes: u64) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        Self {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
            max_bytes,
        }
    }

    fn path_for(&self, component_hash: &str) -> PathBuf {
        self.dir.join(format!(
            "{component_hash}-{}{ENTRY_SUFFIX}",
            self.engine_key
        ))
    }

    /// Load a cached compilation, if present and usable.
    pub(crate) fn load(&self, engine: &Engine, component_hash: &str) -> Option<Component> {
        let path = self.path_for(component_hash);
        // Not followed: a symlink could point anywhere.
        let meta = std::fs::symlink_metadata(&path).ok()?;
        if !meta.is_file() {
            return None;
        }
        if let Some(why) = untrusted_dir(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), "not using the compile cache: {why}");
            return None;
        }
        if !trusted(&meta) {
            tracing::warn!(path = %path.display(), "not loading a compile-cache entry another user owns, or group or others may write");
            return None;
        }
        // SAFETY: the file was written by `store` below from
        // `Engine::precompile_component` into a directory the operator
        // gave us for this purpose, and it and the directory are this
        // user's alone (checked above); wasmtime additionally checks that
        // it was produced by a compatible engine and refuses it otherwise.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(c) => {
                // Recently used: the last to be trimmed. Failing to mark
                // it only makes it an earlier candidate.
                let _ = touch(&path);
                Some(c)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unusable compile-cache entry");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Store a compilation, then trim the cache to its cap; failures only
    /// cost a recompile later.
    pub(crate) fn store(&self, component_hash: &str, component: &Component) {
        let written = match self.try_store(component_hash, component) {
            Ok(written) => written,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not write compile cache");
                return;
            }
        };
        let Some(path) = written else { return };
        match trim(&self.dir, self.max_bytes, &path) {
            Ok(t) if t.entries > 0 || t.stale_tmp > 0 => tracing::info!(
                dir = %self.dir.display(),
                removed = t.entries,
                removed_bytes = t.bytes,
                stale_tmp_removed = t.stale_tmp,
                max_bytes = self.max_bytes,
                "compile cache trimmed: least recently used entries over its cap removed"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not trim compile cache")
            }
        }
    }

    /// Write the entry; `None` when it is larger than the whole cap.
    fn try_store(
        &self,
        component_hash: &str,
        component: &Component,
    ) -> Result<Option<PathBuf>, String> {
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(|e| e.to_string())?;
        }
        if let Some(why) = untrusted_dir(&self.dir) {
            return Err(format!("not writing to it: {why}"));
        }
        let bytes = component.serialize().map_err(|e| e.to_string())?;
        if bytes.len() as u64 > self.max_bytes {
            tracing::info!(
                bytes = bytes.len(),
                max_bytes = self.max_bytes,
                "compiled component is larger than the whole compile cache; not cached"
            );
            return Ok(None);
        }
        let path = self.path_for(component_hash);
        let tmp = self.dir.join(format!(
            ".{component_hash}.{}.{}{TMP_SUFFIX}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        {
            // Private whatever the umask (002 would make it group
            // writable, and so refused at the next load).
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .and_then(|mut f| f.write_all(&bytes))
                .map_err(|e| e.to_string())?;
        }
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            e.to_string()
        })?;
        Ok(Some(path))
    }
}

/// Hex SHA-256 of a component's bytes: its identity in caches and the API.
pub(crate) fn component_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Default cap of the compile cache, in MiB: room for about 25 compiled
/// JavaScript components (`[runtime] cache_max_mb`, `--cache-max-mb`).
pub const DEFAULT_CACHE_MAX_MB: u64 = 1024;

/// The default cache directory: `$WASMHOOK_CACHE_DIR`, else the user's
/// cache dir (`~/.cache/wasmhook`), else none.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WASMHOOK_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    dirs::cache_dir().map(|d| d.join("wasmhook").join("components"))
}
