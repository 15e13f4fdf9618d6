//! SQL for replaying decisions: a plugin's completed `error` and `skip`
//! invocations made pending again, in windows of invocation ids so each
//! write stays short however large the store (invocations have no index
//! by plugin and outcome: `plugin_counts` answers the counts).

use rusqlite::{Connection, OptionalExtension, params};

use super::DbResult;
use super::codec::int;
use crate::store::StoreError;
use crate::store::records::{ReplayFilter, ReplayPage};

/// The columns a replay resets: pending, due now, no decision.
const RESET: &str = "status = 'pending', visible_ms = ?1, leased_until = NULL, attempts = 0,
                     verdict = NULL, reason = NULL, error_kind = NULL, error_message = NULL,
                     duration_us = NULL, fuel = NULL, completed_ms = NULL";

/// What a replay may touch, besides the window or the event: `?2`
/// plugin, `?3` errors, `?4` skips, `?5` from, `?6` to.
const MATCHES: &str = "plugin = ?2 AND status = 'done'
                       AND ((?3 AND verdict = 'error') OR (?4 AND verdict = 'skip'))
                       AND (?5 IS NULL OR created_ms >= ?5) AND (?6 IS NULL OR created_ms < ?6)";

/// One step of a replay: the window of ids after `cursor` (or the one
/// event), and where to go on.
pub(super) fn step(
    conn: &Connection,
    filter: &ReplayFilter,
    cursor: Option<&str>,
    scan: usize,
    now_ms: u64,
) -> Result<ReplayPage, StoreError> {
    let common = params![
        int(now_ms),
        filter.plugin,
        filter.errors,
        filter.skips,
        filter.from_ms.map(int),
        filter.to_ms.map(int),
    ];
    if let Some(event_id) = &filter.event_id {
        let seq: Option<i64> = conn
            .prepare_cached("SELECT seq FROM events WHERE id = ?1")
            .db()?
            .query_row([event_id], |row| row.get(0))
            .optional()
            .db()?;
        let Some(seq) = seq else {
            return Ok(ReplayPage {
                requeued: 0,
                cursor: None,
            });
        };
        let mut stmt = conn
            .prepare_cached(&format!(
                "UPDATE invocations SET {RESET} WHERE event_seq = ?7 AND {MATCHES}"
            ))
            .db()?;
        let mut all: Vec<&dyn rusqlite::ToSql> = common.to_vec();
        all.push(&seq);
        let requeued = stmt.execute(all.as_slice()).db()?;
        return Ok(ReplayPage {
            requeued: requeued as u64,
            cursor: None,
        });
    }
    let after: i64 = match cursor {
        None => 0,
        Some(c) => c.parse().map_err(|_| StoreError::InvalidCursor)?,
    };
    let last: Option<i64> = conn
        .prepare_cached("SELECT MAX(id) FROM invocations")
        .db()?
        .query_row([], |row| row.get(0))
        .db()?;
    let last = last.unwrap_or(0);
    if after >= last {
        return Ok(ReplayPage {
            requeued: 0,
            cursor: None,
        });
    }
    let until = after.saturating_add(int(scan.max(1) as u64)).min(last);
    let mut stmt = conn
        .prepare_cached(&format!(
            "UPDATE invocations SET {RESET} WHERE id > ?7 AND id <= ?8 AND {MATCHES}"
        ))
        .db()?;
    let mut all: Vec<&dyn rusqlite::ToSql> = common.to_vec();
    all.push(&after);
    all.push(&until);
    let requeued = stmt.execute(all.as_slice()).db()?;
    Ok(ReplayPage {
        requeued: requeued as u64,
        cursor: (until < last).then(|| until.to_string()),
    })
}
