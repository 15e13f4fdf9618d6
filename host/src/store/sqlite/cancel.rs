//! SQL for giving up on pending deliveries (`POST
//! /v1/deliveries/{id}/cancel`, `POST /v1/deliveries/cancel`): failed with
//! a failure that says so, out of the due queue, and fenced, so an attempt
//! in flight cannot settle them afterwards.

use rusqlite::{Connection, params};

use super::DbResult;
use super::codec::int;
use crate::store::StoreError;
use crate::store::records::{CancelFilter, CancelResult};

/// The failure a cancelled delivery shows.
pub(super) const CANCELLED: &str = "cancelled by the operator";

/// What cancelling sets; `?1` is now, `?2` the failure. The lease token
/// moves on, so the holder of a lease in flight loses it.
const CANCEL: &str = "status = 'failed', visible_ms = NULL, next_attempt_ms = NULL,
                      leased_until = NULL, lease_token = lease_token + 1, failure = ?2,
                      updated_ms = ?1";

/// Cancel one delivery.
pub(super) fn one(
    conn: &Connection,
    delivery_id: &str,
    now_ms: u64,
) -> Result<CancelResult, StoreError> {
    let status = super::deliveries::status_of(conn, delivery_id)?;
    match status.as_deref() {
        None => Ok(CancelResult::NotFound),
        Some("pending") => {
            conn.prepare_cached(&format!(
                "UPDATE deliveries SET {CANCEL} WHERE id = ?3 AND status = 'pending'"
            ))
            .db()?
            .execute(params![int(now_ms), CANCELLED, delivery_id])
            .db()?;
            Ok(CancelResult::Cancelled)
        }
        Some(_) => Ok(CancelResult::NotPending),
    }
}

/// Cancel the next (at most) `batch` pending deliveries matching
/// `filter`, in `seq` order after `after` and up to `upto`: how many, and the cursor for
/// the next call (`None`: none left). Like a bulk retry, a bulk cancel is
/// a run of these, so it never holds the writer long.
pub(super) fn many(
    conn: &Connection,
    filter: &CancelFilter,
    now_ms: u64,
    (after, upto): (i64, i64),
    batch: usize,
) -> Result<(u64, Option<i64>), StoreError> {
    let seqs = super::deliveries::seqs_of(
        conn,
        "SELECT seq FROM deliveries INDEXED BY deliveries_by_plugin
          WHERE plugin = ?1 AND status = 'pending' AND seq > ?2 AND seq <= ?6
            AND (?3 IS NULL OR created_ms >= ?3) AND (?4 IS NULL OR created_ms < ?4)
          ORDER BY seq LIMIT ?5",
        params![
            filter.plugin,
            after,
            filter.from_ms.map(int),
            filter.to_ms.map(int),
            int(batch as u64),
            upto,
        ],
    )?;
    let mut cancel = conn
        .prepare_cached(&format!(
            "UPDATE deliveries SET {CANCEL} WHERE seq = ?3 AND status = 'pending'"
        ))
        .db()?;
    for seq in &seqs {
        cancel.execute(params![int(now_ms), CANCELLED, seq]).db()?;
    }
    Ok(super::deliveries::batch_end(&seqs, batch))
}
