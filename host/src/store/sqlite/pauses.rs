//! SQL for the plugin pauses the store remembers across restarts (one row
//! per paused plugin; written only when a pause starts or ends).

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use super::DbResult;
use super::codec::{int, uint};
use crate::store::StoreError;
use crate::store::records::PluginPause;

/// Remember or forget `plugin`'s pause.
pub(super) fn set(
    conn: &Connection,
    plugin: &str,
    pause: Option<&PluginPause>,
) -> Result<(), StoreError> {
    match pause {
        Some(p) => conn
            .prepare_cached(
                "INSERT INTO plugin_pauses (plugin, identity, until_ms, pause_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (plugin) DO UPDATE
                    SET identity = excluded.identity, until_ms = excluded.until_ms,
                        pause_ms = excluded.pause_ms",
            )
            .db()?
            .execute(params![
                plugin,
                p.identity,
                int(p.until_ms),
                int(p.pause_ms)
            ])
            .db()?,
        None => conn
            .prepare_cached("DELETE FROM plugin_pauses WHERE plugin = ?1")
            .db()?
            .execute([plugin])
            .db()?,
    };
    Ok(())
}

/// Every remembered pause.
pub(super) fn all(conn: &Connection) -> Result<BTreeMap<String, PluginPause>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT plugin, identity, until_ms, pause_ms FROM plugin_pauses")
        .db()?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                PluginPause {
                    identity: row.get(1)?,
                    until_ms: uint(row.get(2)?),
                    pause_ms: uint(row.get(3)?),
                },
            ))
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}
