//! SQL for the delivery queue: lease, record an attempt, release, park
//! while the plugin is paused by an operator, and manual retries.

use rand::RngExt as _;
use rusqlite::{Connection, OptionalExtension, params};

use super::DbResult;
use super::codec::{REQUEST_COLUMNS, RawRequest, int, request_from_row, uint};
use super::invocations::{PARKED, parse_token};
use crate::store::StoreError;
use crate::store::queue::{AckResult, Attempt, DeliveryJob, LeaseToken, NextStep};
use crate::store::records::{DeliveryStatus, RetryFilter, RetryResult};

/// A new delivery id: `msg_` + a UUIDv7 (time-ordered, unique) built from
/// the caller's clock. Its 74 random bits come from the thread's CSPRNG,
/// not from a `getrandom` system call per id: this runs on the store's
/// single writer thread, once per delivery.
pub(super) fn new_delivery_id(now_ms: u64) -> String {
    let random: [u8; 10] = rand::rng().random();
    let id = uuid::Builder::from_unix_timestamp_millis(now_ms, &random).into_uuid();
    format!("msg_{}", id.simple())
}

/// Lease due (or lease-expired) deliveries.
pub(super) fn lease(
    conn: &Connection,
    now_ms: u64,
    lease_ms: u64,
    limit: usize,
) -> Result<Vec<DeliveryJob>, StoreError> {
    let mut select = conn
        .prepare_cached(&format!(
            "SELECT d.seq, d.id, e.id, d.plugin, d.lease_token, d.round_attempts, d.created_ms,
                    {REQUEST_COLUMNS}
               FROM deliveries d INDEXED BY deliveries_queue
               JOIN events e ON e.seq = d.event_seq
              WHERE d.status = 'pending' AND d.visible_ms <= ?1
              ORDER BY d.visible_ms, d.seq
              LIMIT ?2"
        ))
        .db()?;
    type Row = (i64, String, String, String, i64, i64, i64, RawRequest);
    let rows: Vec<Row> = select
        .query_map(params![int(now_ms), int(limit as u64)], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
                request_from_row(row, 7)?,
            ))
        })
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()?;

    let until = int(now_ms.saturating_add(lease_ms));
    let mut update = conn
        .prepare_cached(
            "UPDATE deliveries SET lease_token = ?2, leased_until = ?3, visible_ms = ?3
              WHERE seq = ?1",
        )
        .db()?;
    let mut jobs = Vec::with_capacity(rows.len());
    for (seq, id, event_id, plugin, token, round, created, request) in rows {
        let token = token + 1;
        update.execute(params![seq, token, until]).db()?;
        jobs.push(DeliveryJob {
            id,
            lease: LeaseToken::new(token.to_string()),
            plugin,
            event_id,
            request: request.decode()?,
            attempts_so_far: u32::try_from(round).unwrap_or(u32::MAX),
            created_ms: uint(created),
            lease_until_ms: uint(until),
        });
    }
    Ok(jobs)
}

/// The fencing condition shared by the calls that settle a lease.
const HOLDS_LEASE: &str =
    "seq = ?1 AND lease_token = ?2 AND status = 'pending' AND leased_until IS NOT NULL";

/// Log an attempt; apply `next` if the lease is still held.
pub(super) fn record_attempt(
    conn: &Connection,
    delivery_id: &str,
    lease: &LeaseToken,
    attempt: &Attempt,
    next: &NextStep,
    now_ms: u64,
) -> Result<AckResult, StoreError> {
    let (status, due, failure) = match next {
        NextStep::Succeeded => (DeliveryStatus::Succeeded, None, None),
        NextStep::RetryAt(at) => (DeliveryStatus::Pending, Some(int(*at)), None),
        NextStep::Failed(why) => (DeliveryStatus::Failed, None, Some(why.as_str())),
    };
    // The usual case in one statement: the lease is held, the delivery
    // moves on and its attempt is counted.
    let settled: Option<i64> = match parse_token(lease) {
        Some(token) => conn
            .prepare_cached(
                "UPDATE deliveries
                    SET status = ?3, visible_ms = ?4, next_attempt_ms = ?4, leased_until = NULL,
                        failure = ?5, updated_ms = ?6, round_attempts = round_attempts + 1
                  WHERE id = ?1 AND lease_token = ?2 AND status = 'pending'
                    AND leased_until IS NOT NULL
                RETURNING seq",
            )
            .db()?
            .query_row(
                params![
                    delivery_id,
                    token,
                    status.as_str(),
                    due,
                    failure,
                    int(now_ms)
                ],
                |row| row.get(0),
            )
            .optional()
            .db()?,
        None => None,
    };
    let (seq, result) = match settled {
        Some(seq) => (seq, AckResult::Applied),
        None => {
            // Lease lost: the attempt happened, so it is logged, but the
            // state belongs to the lease's holder. It counts in the
            // schedule only while another holder has the delivery in the
            // same round (its lease expired and was taken over): not once
            // the delivery was cancelled or settled, nor in a round the
            // operator started after the stale lease was issued.
            conn.prepare_cached(
                "UPDATE deliveries SET round_attempts = round_attempts + 1
                  WHERE id = ?1 AND status = 'pending' AND leased_until IS NOT NULL
                    AND ?2 > round_token",
            )
            .db()?
            .execute(params![delivery_id, parse_token(lease).unwrap_or(i64::MIN)])
            .db()?;
            let found: Option<i64> = conn
                .prepare_cached("SELECT seq FROM deliveries WHERE id = ?1")
                .db()?
                .query_row([delivery_id], |row| row.get(0))
                .optional()
                .db()?;
            match found {
                Some(seq) => (seq, AckResult::LeaseLost),
                None => return Ok(AckResult::NotFound),
            }
        }
    };
    conn.prepare_cached(
        "INSERT INTO attempts (delivery_seq, started_ms, duration_ms, status_code, error, outcome,
                               response)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .db()?
    .execute(params![
        seq,
        int(attempt.started_ms),
        int(attempt.duration_ms),
        attempt.status_code,
        attempt.error,
        attempt.outcome.as_str(),
        attempt.response,
    ])
    .db()?;
    Ok(result)
}

/// Give a leased delivery back without an attempt.
pub(super) fn release(
    conn: &Connection,
    delivery_id: &str,
    lease: &LeaseToken,
    retry_at_ms: u64,
) -> Result<AckResult, StoreError> {
    while_leased(
        conn,
        delivery_id,
        lease,
        "visible_ms = ?3, next_attempt_ms = ?3, leased_until = NULL",
        int(retry_at_ms),
    )
}

/// Park a leased delivery: invisible to leases until unparked, its
/// scheduled time kept. Not counted as an attempt.
pub(super) fn park(
    conn: &Connection,
    delivery_id: &str,
    lease: &LeaseToken,
) -> Result<AckResult, StoreError> {
    while_leased(
        conn,
        delivery_id,
        lease,
        "visible_ms = ?3, leased_until = NULL",
        int(PARKED),
    )
}

/// Apply `set` (which may use `?3` = `value`) to a delivery if `lease`
/// still holds it.
fn while_leased(
    conn: &Connection,
    delivery_id: &str,
    lease: &LeaseToken,
    set: &str,
    value: i64,
) -> Result<AckResult, StoreError> {
    let Some(seq) = seq_of(conn, delivery_id)? else {
        return Ok(AckResult::NotFound);
    };
    let Some(token) = parse_token(lease) else {
        return Ok(AckResult::LeaseLost);
    };
    let changed = conn
        .prepare_cached(&format!("UPDATE deliveries SET {set} WHERE {HOLDS_LEASE}"))
        .db()?
        .execute(params![seq, token, value])
        .db()?;
    Ok(if changed == 1 {
        AckResult::Applied
    } else {
        AckResult::LeaseLost
    })
}

/// Make parked deliveries due again, at their scheduled time or `now_ms`
/// if that has passed, except those of the plugins in `except`.
pub(super) fn unpark(conn: &Connection, except: &[String], now_ms: u64) -> Result<u64, StoreError> {
    let except = serde_json::to_string(except)
        .map_err(|e| StoreError::Backend(format!("encoding plugin names: {e}")))?;
    let changed = conn
        .prepare_cached(
            "UPDATE deliveries INDEXED BY deliveries_queue
                SET visible_ms = MAX(COALESCE(next_attempt_ms, ?1), ?1)
              WHERE status = 'pending' AND visible_ms = ?2
                AND plugin NOT IN (SELECT value FROM json_each(?3))",
        )
        .db()?
        .execute(params![int(now_ms), int(PARKED), except])
        .db()?;
    Ok(changed as u64)
}

/// A delivery's status (`pending`, `succeeded`, `failed`), if it exists.
pub(super) fn status_of(
    conn: &Connection,
    delivery_id: &str,
) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT status FROM deliveries WHERE id = ?1")
        .db()?
        .query_row([delivery_id], |row| row.get(0))
        .optional()
        .db()
}

fn seq_of(conn: &Connection, delivery_id: &str) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT seq FROM deliveries WHERE id = ?1")
        .db()?
        .query_row([delivery_id], |row| row.get(0))
        .optional()
        .db()
}

/// What a manual retry sets: pending, due now, fresh schedule.
/// A fresh round: every lease issued before it (`lease_token` so far) is
/// of an earlier round.
const REQUEUE: &str = "status = 'pending', visible_ms = ?1, next_attempt_ms = ?1, \
     leased_until = NULL, round_attempts = 0, round_token = lease_token, failure = NULL, \
     updated_ms = ?1";

/// Requeue one finished delivery.
pub(super) fn retry_one(
    conn: &Connection,
    delivery_id: &str,
    now_ms: u64,
) -> Result<RetryResult, StoreError> {
    let status = status_of(conn, delivery_id)?;
    match status.as_deref() {
        None => Ok(RetryResult::NotFound),
        Some("pending") => Ok(RetryResult::AlreadyPending),
        Some(_) => {
            conn.prepare_cached(&format!("UPDATE deliveries SET {REQUEUE} WHERE id = ?2"))
                .db()?
                .execute(params![int(now_ms), delivery_id])
                .db()?;
            Ok(RetryResult::Requeued)
        }
    }
}

/// The `seq` of each row `sql` selects: one batch of a bulk run.
pub(super) fn seqs_of(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<i64>, StoreError> {
    conn.prepare_cached(sql)
        .db()?
        .query_map(params, |row| row.get(0))
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()
}

/// What a batch of a bulk run did: how many rows, and where the next
/// batch starts (`None`: this one was not full, nothing is left).
pub(super) fn batch_end(seqs: &[i64], batch: usize) -> (u64, Option<i64>) {
    let next = (seqs.len() == batch)
        .then(|| seqs.last().copied())
        .flatten();
    (seqs.len() as u64, next)
}

/// Requeue the next (at most) `batch` finished deliveries matching
/// `filter`, in `seq` order after `after` and up to `upto` (the newest
/// delivery when the run began: those created later are not its): how
/// many, and the cursor for the next call (`None`: none left). A bulk retry is a run of these, each its
/// own write, so other writes go on between them however many match; the
/// cursor visits each delivery once, even one requeued, sent and settled
/// again while the run goes on.
pub(super) fn retry_many(
    conn: &Connection,
    filter: &RetryFilter,
    now_ms: u64,
    (after, upto): (i64, i64),
    batch: usize,
) -> Result<(u64, Option<i64>), StoreError> {
    if filter.status == DeliveryStatus::Pending {
        return Ok((0, None));
    }
    // A plugin's rows by its `(plugin, status, seq)` index, the others by
    // `(status, seq)`: each a range search. (`?3 IS NULL OR plugin = ?3`
    // would have SQLite scan the whole index on every batch.)
    let sql = match filter.plugin {
        Some(_) => {
            "SELECT seq FROM deliveries INDEXED BY deliveries_by_plugin
              WHERE plugin = ?3 AND status = ?1 AND seq > ?2 AND seq <= ?7
                AND (?4 IS NULL OR created_ms >= ?4)
                AND (?5 IS NULL OR created_ms < ?5)
              ORDER BY seq LIMIT ?6"
        }
        None => {
            "SELECT seq FROM deliveries INDEXED BY deliveries_by_status
              WHERE status = ?1 AND seq > ?2 AND seq <= ?7 AND ?3 IS NULL
                AND (?4 IS NULL OR created_ms >= ?4)
                AND (?5 IS NULL OR created_ms < ?5)
              ORDER BY seq LIMIT ?6"
        }
    };
    let seqs = seqs_of(
        conn,
        sql,
        params![
            filter.status.as_str(),
            after,
            filter.plugin,
            filter.from_ms.map(int),
            filter.to_ms.map(int),
            int(batch as u64),
            upto,
        ],
    )?;
    let mut requeue = conn
        .prepare_cached(&format!("UPDATE deliveries SET {REQUEUE} WHERE seq = ?2"))
        .db()?;
    for seq in &seqs {
        requeue.execute(params![int(now_ms), seq]).db()?;
    }
    Ok(batch_end(&seqs, batch))
}
