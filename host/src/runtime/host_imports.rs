//! The host side of the plugin imports: `log`, `config` and `kv`.
//!
//! Failures of the backing store, oversized keys or values, runaway `kv`
//! loops, and writes past the plugin's quota trap the calling instance;
//! they never reach the host.

use super::bindings::{config, kv, log, types};
use super::state::State;
use crate::model::{LogLevel, LogSource};

/// Longest accepted `kv` key, in bytes.
const MAX_KV_KEY_BYTES: usize = 1024;
/// Largest accepted `kv` value, in bytes.
const MAX_KV_VALUE_BYTES: usize = 1024 * 1024;

impl types::Host for State {}

impl log::Host for State {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Trace => LogLevel::Trace,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        let limits = &self.shared.limits;
        self.logs.push(limits, level, LogSource::Log, &message);
        Ok(())
    }
}

impl config::Host for State {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.shared.config.get(&key).cloned())
    }
}

impl State {
    /// Count one `kv` operation and check the key; traps when over budget.
    fn kv_op(&mut self, key: &str) -> wasmtime::Result<()> {
        self.kv_ops += 1;
        let max = self.shared.limits.max_kv_ops;
        if self.kv_ops > max {
            wasmtime::bail!("kv: more than {max} operations in one invocation");
        }
        if key.len() > MAX_KV_KEY_BYTES {
            wasmtime::bail!(
                "kv: key of {} bytes exceeds the {MAX_KV_KEY_BYTES}-byte limit",
                key.len()
            );
        }
        Ok(())
    }

    /// Count the bytes a write stores; traps past the per-invocation cap,
    /// so that one invocation cannot rewrite the store without end.
    fn kv_write(&mut self, key: &str, value_len: usize) -> wasmtime::Result<()> {
        self.kv_written = self
            .kv_written
            .saturating_add(crate::store::kv_entry_bytes(key, value_len));
        let max = self.shared.limits.max_kv_written_bytes;
        if self.kv_written > max {
            wasmtime::bail!(
                "kv: more than {max} bytes written in one invocation (keys and values of every set and increment)"
            );
        }
        Ok(())
    }
}

fn store_failed(e: impl std::fmt::Display) -> wasmtime::Error {
    wasmtime::Error::msg(format!("kv: {e}"))
}

// Every call goes to `self.kv`: the plugin's store, or a dry run's
// overlay.
impl kv::Host for State {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        self.kv_op(&key)?;
        self.kv.get(&self.shared.name, &key).map_err(store_failed)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<()> {
        self.kv_op(&key)?;
        if value.len() > MAX_KV_VALUE_BYTES {
            wasmtime::bail!(
                "kv: value of {} bytes exceeds the {MAX_KV_VALUE_BYTES}-byte limit",
                value.len()
            );
        }
        self.kv_write(&key, value.len())?;
        let limit = self.shared.limits.kv_max_bytes;
        self.kv
            .set(&self.shared.name, &key, &value, limit)
            .map_err(store_failed)
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.kv_op(&key)?;
        self.kv
            .delete(&self.shared.name, &key)
            .map_err(store_failed)
    }

    fn increment(&mut self, key: String, delta: i64) -> wasmtime::Result<i64> {
        self.kv_op(&key)?;
        self.kv_write(&key, 8)?;
        let limit = self.shared.limits.kv_max_bytes;
        self.kv
            .increment(&self.shared.name, &key, delta, limit)
            .map_err(store_failed)
    }
}
