//! The durable plugin key-value store on SQLite. Reads use the reader
//! pool; writes go through the group-commit writer, so an increment is
//! atomic (one writer) and durable when it returns.

use std::sync::Arc;

use rusqlite::{OptionalExtension, params};

use super::{DbResult, Inner};
use crate::store::StoreError;
use crate::store::kv::{KvStore, decode_counter};

/// [`KvStore`] backed by the `kv` table. Blocking: call from blocking
/// threads only.
pub(super) struct SqliteKv {
    pub(super) inner: Arc<Inner>,
}

impl KvStore for SqliteKv {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.readers.read(|conn| {
            conn.prepare_cached("SELECT value FROM kv WHERE namespace = ?1 AND key = ?2")
                .db()?
                .query_row(params![namespace, key], |row| row.get(0))
                .optional()
                .db()
        })
    }

    fn set(&self, namespace: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let (ns, key, value) = (namespace.to_owned(), key.to_owned(), value.to_vec());
        self.inner.writer.write_blocking(move |conn| {
            conn.prepare_cached(
                "INSERT INTO kv (namespace, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
            )
            .db()?
            .execute(params![ns, key, value])
            .db()?;
            Ok(())
        })
    }

    fn delete(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        let (ns, key) = (namespace.to_owned(), key.to_owned());
        self.inner.writer.write_blocking(move |conn| {
            conn.prepare_cached("DELETE FROM kv WHERE namespace = ?1 AND key = ?2")
                .db()?
                .execute(params![ns, key])
                .db()?;
            Ok(())
        })
    }

    fn increment(&self, namespace: &str, key: &str, delta: i64) -> Result<i64, StoreError> {
        let (ns, key) = (namespace.to_owned(), key.to_owned());
        self.inner.writer.write_blocking(move |conn| {
            let current: Option<Vec<u8>> = conn
                .prepare_cached("SELECT value FROM kv WHERE namespace = ?1 AND key = ?2")
                .db()?
                .query_row(params![ns, key], |row| row.get(0))
                .optional()
                .db()?;
            let next = decode_counter(current.as_deref().unwrap_or_default()).wrapping_add(delta);
            conn.prepare_cached(
                "INSERT INTO kv (namespace, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
            )
            .db()?
            .execute(params![ns, key, next.to_le_bytes().to_vec()])
            .db()?;
            Ok(next)
        })
    }
}
