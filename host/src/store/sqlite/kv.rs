//! The durable plugin key-value store on SQLite. Reads use the reader
//! pool; writes go through the group-commit writer, so an increment is
//! atomic (one writer) and durable when it returns, and a quota check and
//! the write it allows see the same state. `kv_usage` (kept by triggers)
//! holds each namespace's size.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};

use super::{DbResult, Inner};
use crate::store::StoreError;
use crate::store::kv::{KvEntry, KvError, KvStore, KvUsage, admit, decode_counter, entry_bytes};

/// [`KvStore`] backed by the `kv` table. Blocking: call from blocking
/// threads only.
pub(super) struct SqliteKv {
    pub(super) inner: Arc<Inner>,
}

/// The usage of `namespace`.
pub(super) fn usage(conn: &Connection, namespace: &str) -> Result<KvUsage, StoreError> {
    let row: Option<(i64, i64)> = conn
        .prepare_cached("SELECT keys, bytes FROM kv_usage WHERE namespace = ?1")
        .db()?
        .query_row(params![namespace], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
        .db()?;
    let (keys, bytes) = row.unwrap_or_default();
    Ok(KvUsage {
        keys: u64::try_from(keys).unwrap_or(0),
        bytes: u64::try_from(bytes).unwrap_or(0),
    })
}

fn value_of(conn: &Connection, ns: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    conn.prepare_cached("SELECT value FROM kv WHERE namespace = ?1 AND key = ?2")
        .db()?
        .query_row(params![ns, key], |row| row.get(0))
        .optional()
        .db()
}

/// Write `value` under `key` if the quota allows; on the writer.
fn put(
    conn: &Connection,
    ns: &str,
    key: &str,
    value: &[u8],
    old: Option<&[u8]>,
    limit: u64,
) -> Result<Result<(), KvError>, StoreError> {
    let used = usage(conn, ns)?.bytes;
    let old = old.map_or(0, |v| entry_bytes(key, v.len()));
    if let Err(full) = admit(used, old, entry_bytes(key, value.len()), limit) {
        return Ok(Err(full));
    }
    conn.prepare_cached(
        "INSERT INTO kv (namespace, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
    )
    .db()?
    .execute(params![ns, key, value])
    .db()?;
    Ok(Ok(()))
}

/// Up to `limit` entries of `ns` whose key starts with `prefix`, after
/// `after`, with the first `head` bytes of each value. The key range is
/// bounded on both sides, so a page seeks instead of scanning the
/// namespace.
pub(super) fn list(
    conn: &Connection,
    ns: &str,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
    head: usize,
) -> Result<Vec<KvEntry>, StoreError> {
    // Every key with the prefix sorts below it followed by the largest
    // character (BINARY collation compares UTF-8 bytes).
    let end = (!prefix.is_empty()).then(|| format!("{prefix}{}", char::MAX));
    let mut stmt = conn
        .prepare_cached(
            "SELECT key, length(value), substr(value, 1, ?5) FROM kv
              WHERE namespace = ?1 AND key >= ?2
                AND (?3 IS NULL OR key > ?3)
                AND (?4 IS NULL OR key < ?4)
              ORDER BY key LIMIT ?6",
        )
        .db()?;
    let rows = stmt
        .query_map(
            params![
                ns,
                prefix,
                after,
                end,
                i64::try_from(head).unwrap_or(i64::MAX),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |row| {
                Ok(KvEntry {
                    key: row.get(0)?,
                    value_bytes: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                    head: row.get(2)?,
                })
            },
        )
        .db()?;
    rows.collect::<Result<Vec<_>, _>>().db()
}

/// Delete up to `limit` entries of `ns` whose key starts with `prefix`.
pub(super) fn clear(
    conn: &Connection,
    ns: &str,
    prefix: &str,
    limit: usize,
) -> Result<u64, StoreError> {
    let deleted = conn
        .prepare_cached(
            "DELETE FROM kv WHERE namespace = ?1 AND key IN (
                 SELECT key FROM kv WHERE namespace = ?1
                    AND substr(key, 1, length(?2)) = ?2 LIMIT ?3)",
        )
        .db()?
        .execute(params![
            ns,
            prefix,
            i64::try_from(limit).unwrap_or(i64::MAX)
        ])
        .db()?;
    Ok(deleted as u64)
}

impl KvStore for SqliteKv {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner
            .readers
            .read(|conn| value_of(conn, namespace, key))
    }

    fn set(&self, namespace: &str, key: &str, value: &[u8], limit: u64) -> Result<(), KvError> {
        let (ns, key, value) = (namespace.to_owned(), key.to_owned(), value.to_vec());
        self.inner.writer.write_blocking(move |conn| {
            let old = value_of(conn, &ns, &key)?;
            put(conn, &ns, &key, &value, old.as_deref(), limit)
        })?
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

    fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        limit: u64,
    ) -> Result<i64, KvError> {
        let (ns, key) = (namespace.to_owned(), key.to_owned());
        self.inner.writer.write_blocking(move |conn| {
            let current = value_of(conn, &ns, &key)?;
            let next = decode_counter(current.as_deref().unwrap_or_default()).wrapping_add(delta);
            Ok(put(
                conn,
                &ns,
                &key,
                &next.to_le_bytes(),
                current.as_deref(),
                limit,
            )?
            .map(|()| next))
        })?
    }

    fn usage(&self, namespace: &str) -> Result<KvUsage, StoreError> {
        self.inner.readers.read(|conn| usage(conn, namespace))
    }
}
