//! SQL for listing events, newest first, with where each one's work
//! stands. Events have no index by name or user (it would cost every
//! ingest a write), so a page looks at a bounded window of sequence
//! numbers below its cursor and says where to go on.

use rusqlite::{Connection, params};

use super::DbResult;
use super::codec::{EVENT_COLUMNS, event_from_row, int, uint};
use crate::store::StoreError;
use crate::store::records::{EventPage, EventQuery, EventSummary, StatusCounts};

/// Page size when the query asks for 0.
const DEFAULT_LIMIT: usize = 100;
/// Largest page.
const MAX_LIMIT: usize = 1000;
/// Events one page looks at, at most, unless the query says.
const SCAN: i64 = 10_000;

/// One page of events.
pub(super) fn list(conn: &Connection, query: &EventQuery) -> Result<EventPage, StoreError> {
    let limit = match query.limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    let top: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM events")
        .db()?
        .query_row([], |row| row.get(0))
        .db()?;
    // A cursor above the newest event (made up, not one a page gave) starts
    // at the newest, so following pages ends as it does from the top.
    let below: i64 = match &query.cursor {
        Some(c) => c
            .parse::<i64>()
            .map_err(|_| StoreError::InvalidCursor)?
            .min(top),
        None => top,
    };
    // Retention deletes the oldest events: the window stops at the oldest kept.
    let oldest: i64 = conn
        .prepare_cached("SELECT COALESCE(MIN(seq), 1) FROM events")
        .db()?
        .query_row([], |row| row.get(0))
        .db()?;
    let scan = match query.scan {
        0 => SCAN,
        n => int(n as u64),
    };
    let floor = below.saturating_sub(scan).max(oldest);
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT e.seq, e.received_ms, {EVENT_COLUMNS} FROM events e
              WHERE e.seq < ?1 AND e.seq >= ?2
                AND (?3 IS NULL OR e.name = ?3) AND (?4 IS NULL OR e.user_id = ?4)
              ORDER BY e.seq DESC LIMIT ?5"
        ))
        .db()?;
    let mut rows = stmt
        .query_map(
            params![
                below,
                floor,
                query.name,
                query.user_id,
                int(limit as u64 + 1)
            ],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    event_from_row(row, 2)?,
                ))
            },
        )
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()?;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|(seq, ..)| seq.to_string())
    } else {
        // The whole window was read: go on below it, if anything is there.
        (floor > oldest).then(|| floor.to_string())
    };
    let items = rows
        .into_iter()
        .map(|(seq, received_ms, raw)| {
            Ok(EventSummary {
                event: raw.decode()?,
                received_ms: uint(received_ms),
                pending: pending(conn, seq)?,
                deliveries: deliveries(conn, seq)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(EventPage { items, next_cursor })
}

/// Whether a decision or a delivery of event `seq` is still pending.
fn pending(conn: &Connection, seq: i64) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM invocations WHERE event_seq = ?1 AND status = 'pending')
             OR EXISTS (SELECT 1 FROM deliveries WHERE event_seq = ?1 AND status = 'pending')",
    )
    .db()?
    .query_row([seq], |row| row.get(0))
    .db()
}

/// Event `seq`'s deliveries by status.
fn deliveries(conn: &Connection, seq: i64) -> Result<StatusCounts, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT status, COUNT(*) FROM deliveries WHERE event_seq = ?1 GROUP BY status",
        )
        .db()?;
    let mut counts = StatusCounts::default();
    let rows = stmt
        .query_map([seq], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })
        .db()?;
    for row in rows {
        let (status, n) = row.db()?;
        let n = uint(n);
        match status.as_str() {
            "pending" => counts.pending = n,
            "succeeded" => counts.succeeded = n,
            "failed" => counts.failed = n,
            other => return Err(StoreError::Corrupt(format!("delivery status {other:?}"))),
        }
    }
    Ok(counts)
}
