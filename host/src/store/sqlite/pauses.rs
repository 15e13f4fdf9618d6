//! SQL for the plugin pauses the store keeps across restarts: those of
//! plugins their breaker paused, and those an operator asked for (one row
//! per paused plugin in each table; written only when a pause starts or
//! ends).

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use super::DbResult;
use super::codec::{int, uint};
use crate::store::StoreError;
use crate::store::records::{PluginHold, PluginPause};

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

/// Keep or drop an operator's pause of `plugin`.
pub(super) fn set_hold(
    conn: &Connection,
    plugin: &str,
    hold: Option<&PluginHold>,
) -> Result<(), StoreError> {
    match hold {
        Some(h) => conn
            .prepare_cached(
                "INSERT INTO plugin_holds (plugin, since_ms, reason) VALUES (?1, ?2, ?3)
                 ON CONFLICT (plugin) DO UPDATE
                    SET since_ms = excluded.since_ms, reason = excluded.reason",
            )
            .db()?
            .execute(params![plugin, int(h.since_ms), h.reason])
            .db()?,
        None => conn
            .prepare_cached("DELETE FROM plugin_holds WHERE plugin = ?1")
            .db()?
            .execute([plugin])
            .db()?,
    };
    Ok(())
}

/// Every operator's pause kept.
pub(super) fn holds(conn: &Connection) -> Result<BTreeMap<String, PluginHold>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT plugin, since_ms, reason FROM plugin_holds")
        .db()?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                PluginHold {
                    since_ms: uint(row.get(1)?),
                    reason: row.get(2)?,
                },
            ))
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}
