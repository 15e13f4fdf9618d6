//! SQL for retention: delete old events whose work is over, with
//! everything that hangs off them.
//!
//! Events are visited in insertion order (`seq`, the rowid), which is
//! the order of `received_ms` up to clock steps, so finding the oldest
//! candidates needs no index of its own: a pass stops at the first event
//! received after the cut-off. Old events that still have work pending
//! are skipped and looked at again in the next pass; a cursor, kept
//! between calls, carries a pass past them, so a long run of them (a
//! paused plugin's backlog) never hides the finished events behind it.
//! Each call looks at a bounded number of events, so it holds the writer
//! briefly however long that run is.
//!
//! The pages freed by deleting are reused by later inserts, so at steady
//! state the file neither grows nor shrinks. After a burst has been pruned
//! most of the file may be free for a long time: then part of it is given
//! back to the file system (`PRAGMA incremental_vacuum`, on databases
//! created with `auto_vacuum = INCREMENTAL`, which this version does), a
//! bounded number of pages per prune call, keeping some free for reuse.

use std::sync::atomic::{AtomicI64, Ordering};

use rusqlite::{Connection, params};

use super::DbResult;
use super::codec::int;
use crate::store::{Pruned, StoreError};

/// Events looked at per call, per event it may delete: bounds the time
/// one call holds the writer while passing events with work pending.
const SCAN_FACTOR: usize = 4;

/// Give pages back once more than this share (1/N) of the file is free...
const RECLAIM_ABOVE: i64 = 4;
/// ...down to this share, kept for reuse by the next inserts.
const RECLAIM_DOWN_TO: i64 = 8;
/// Fewer free pages than this are never worth a vacuum step (1 MiB).
const RECLAIM_MIN_PAGES: i64 = 256;
/// Most pages given back per prune call (16 MiB), which bounds the time
/// the call holds the writer.
const RECLAIM_MAX_PAGES: i64 = 4096;

/// Delete up to `limit` finished events received before `before_ms`,
/// going on from `cursor` (the last event a previous call looked at, 0 to
/// start a pass); then, if much of the file is free, give some back.
pub(super) fn prune(
    conn: &Connection,
    before_ms: u64,
    limit: usize,
    cursor: &AtomicI64,
) -> Result<Pruned, StoreError> {
    let (pruned, next) = delete_old(conn, before_ms, limit, cursor.load(Ordering::Relaxed))?;
    if pruned.deleted > 0 {
        reclaim(conn)?;
    }
    // Set before the commit: if it fails, this stretch's events are looked
    // at again in the next pass.
    cursor.store(next, Ordering::Relaxed);
    Ok(pruned)
}

/// Give free pages back to the file system when more than 1/4 of the file
/// is free, down to 1/8 and at most [`RECLAIM_MAX_PAGES`] at a time. A
/// no-op on databases without incremental auto-vacuum.
fn reclaim(conn: &Connection) -> Result<(), StoreError> {
    let mode: i64 = conn
        .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
        .db()?;
    const INCREMENTAL: i64 = 2;
    if mode != INCREMENTAL {
        return Ok(());
    }
    let pages: i64 = conn
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .db()?;
    let free: i64 = conn
        .pragma_query_value(None, "freelist_count", |r| r.get(0))
        .db()?;
    if free < RECLAIM_MIN_PAGES || free * RECLAIM_ABOVE <= pages {
        return Ok(());
    }
    let give_back = (free - pages / RECLAIM_DOWN_TO).clamp(0, RECLAIM_MAX_PAGES);
    // The pragma frees one page per step: step it to the end.
    let mut vacuum = conn
        .prepare(&format!("PRAGMA incremental_vacuum({give_back})"))
        .db()?;
    let mut steps = vacuum.raw_query();
    while steps.next().db()?.is_some() {}
    Ok(())
}

/// One call's share of a pass: what it did, and where the next call
/// starts (0: a new pass).
fn delete_old(
    conn: &Connection,
    before_ms: u64,
    limit: usize,
    after_seq: i64,
) -> Result<(Pruned, i64), StoreError> {
    let scan = limit.saturating_mul(SCAN_FACTOR);
    let candidates: Vec<(i64, i64)> = conn
        .prepare_cached("SELECT seq, received_ms FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")
        .db()?
        .query_map(params![after_seq, int(scan as u64)], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()?;
    // Fewer rows than asked for: the pass reaches the end of the table.
    let mut pass_over = candidates.len() < scan;
    let mut last = after_seq;
    let mut pending = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM invocations WHERE event_seq = ?1 AND status = 'pending')
                 OR EXISTS (SELECT 1 FROM deliveries WHERE event_seq = ?1 AND status = 'pending')",
        )
        .db()?;
    let mut deleted = 0u64;
    let before = int(before_ms);
    for (seq, received_ms) in candidates {
        if received_ms >= before {
            pass_over = true;
            break;
        }
        if deleted as usize >= limit {
            pass_over = false;
            break;
        }
        last = seq;
        if pending.query_row([seq], |row| row.get::<_, bool>(0)).db()? {
            continue;
        }
        delete_event(conn, seq)?;
        deleted += 1;
    }
    let pruned = Pruned {
        deleted,
        more: !pass_over,
    };
    Ok((pruned, if pass_over { 0 } else { last }))
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
