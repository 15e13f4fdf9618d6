//! SQL for retention: delete old events whose work is over, with
//! everything that hangs off them.
//!
//! Events are visited in insertion order (`seq`, the rowid), which is
//! the order of `received_ms` up to clock steps, so finding the oldest
//! candidates needs no index of its own: the scan stops at the first event
//! received after the cut-off, and skips (but looks at again next time)
//! old events that still have work pending.

use rusqlite::{Connection, params};

use super::DbResult;
use super::codec::int;
use crate::store::StoreError;

/// Old events looked at per deleted one at most, so a long run of old
/// events with pending work (a paused plugin's backlog) bounds the scan.
const SCAN_FACTOR: usize = 4;

/// Delete up to `limit` finished events received before `before_ms`.
pub(super) fn prune(conn: &Connection, before_ms: u64, limit: usize) -> Result<u64, StoreError> {
    let scan = limit.saturating_mul(SCAN_FACTOR);
    let candidates: Vec<(i64, i64)> = conn
        .prepare_cached("SELECT seq, received_ms FROM events ORDER BY seq LIMIT ?1")
        .db()?
        .query_map([int(scan as u64)], |row| Ok((row.get(0)?, row.get(1)?)))
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()?;
    let mut pending = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM invocations WHERE event_seq = ?1 AND status = 'pending')
                 OR EXISTS (SELECT 1 FROM deliveries WHERE event_seq = ?1 AND status = 'pending')",
        )
        .db()?;
    let mut deleted = 0u64;
    let before = int(before_ms);
    for (seq, received_ms) in candidates {
        if received_ms >= before || deleted as usize >= limit {
            break;
        }
        if pending.query_row([seq], |row| row.get::<_, bool>(0)).db()? {
            continue;
        }
        delete_event(conn, seq)?;
        deleted += 1;
    }
    Ok(deleted)
}

/// Delete one event and its rows, children first (foreign keys are on).
fn delete_event(conn: &Connection, seq: i64) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM attempts WHERE delivery_seq IN (SELECT seq FROM deliveries WHERE event_seq = ?1)",
        "DELETE FROM deliveries WHERE event_seq = ?1",
        "DELETE FROM invocations WHERE event_seq = ?1",
        "DELETE FROM events WHERE seq = ?1",
    ] {
        conn.prepare_cached(sql).db()?.execute(params![seq]).db()?;
    }
    Ok(())
}
