//! What opening a database does for the work a dead process left.
//!
//! Opening takes the database's lock first, so no other process can hold
//! a lease in it: every lease found is a dead process's. Its work is made
//! due at once instead of when the lease runs out, which is measured on
//! the wall clock: after a restart that could be the lease's length, or
//! much longer if the clock was stepped back meanwhile.

use rusqlite::{Connection, params};

use super::DbResult;
use super::codec::int;
use crate::store::StoreError;

/// Make every leased job due now; returns how many. Leases already over
/// keep their (earlier) time, so the order of due work is kept.
pub(super) fn release_dead_leases(conn: &Connection) -> Result<u64, StoreError> {
    let now = int(crate::ingest::now_ms());
    let mut released = 0;
    for table in ["invocations", "deliveries"] {
        released += conn
            .execute(
                &format!(
                    "UPDATE {table} SET visible_ms = ?1
                      WHERE status = 'pending' AND leased_until IS NOT NULL
                        AND visible_ms = leased_until AND visible_ms > ?1"
                ),
                params![now],
            )
            .db()? as u64;
    }
    if released > 0 {
        tracing::info!(
            released,
            "work in flight when the last process stopped is due again"
        );
    }
    Ok(released)
}
