//! SQL for the invocation queue: lease, complete (creating deliveries),
//! release.

use rusqlite::{Connection, OptionalExtension, params};

use super::DbResult;
use super::codec::{EVENT_COLUMNS, RawEvent, encode_headers, event_from_row, int, uint};
use super::deliveries::new_delivery_id;
use crate::model::OutboundRequest;
use crate::store::StoreError;
use crate::store::queue::{
    AckResult, Completion, DeliveryJob, InvocationJob, InvocationOutcome, JobLease, LeaseToken,
    Verdict,
};

/// `visible_ms` of a parked job: later than any clock, so no lease call
/// reaches it, and recognisable so [`unpark`] can find it.
pub(super) const PARKED: u64 = i64::MAX as u64;

/// Make parked jobs due at `now_ms` (one plugin's or all; oldest first, up
/// to `limit`).
pub(super) fn unpark(
    conn: &Connection,
    plugin: Option<&str>,
    limit: Option<usize>,
    now_ms: u64,
) -> Result<u64, StoreError> {
    let limit = limit.map_or(-1, |n| int(n as u64));
    let changed = conn
        .prepare_cached(
            "UPDATE invocations SET visible_ms = ?1
              WHERE id IN (SELECT id FROM invocations
                            WHERE status = 'pending' AND visible_ms = ?2
                              AND (?3 IS NULL OR plugin = ?3)
                            ORDER BY id LIMIT ?4)",
        )
        .db()?
        .execute(params![int(now_ms), int(PARKED), plugin, limit])
        .db()?;
    Ok(changed as u64)
}

/// Parse one of our lease tokens; a foreign token matches nothing.
pub(super) fn parse_token(lease: &LeaseToken) -> Option<i64> {
    lease.as_str().parse().ok()
}

/// Lease due (or lease-expired) jobs.
pub(super) fn lease(
    conn: &Connection,
    now_ms: u64,
    lease_ms: u64,
    limit: usize,
) -> Result<Vec<InvocationJob>, StoreError> {
    let mut select = conn
        .prepare_cached(&format!(
            "SELECT i.id, i.plugin, i.lease_token, i.attempts, i.created_ms, {EVENT_COLUMNS}
               FROM invocations i INDEXED BY invocations_queue
               JOIN events e ON e.seq = i.event_seq
              WHERE i.status = 'pending' AND i.visible_ms <= ?1
              ORDER BY i.visible_ms, i.id
              LIMIT ?2"
        ))
        .db()?;
    let rows: Vec<(i64, String, i64, i64, i64, RawEvent)> = select
        .query_map(params![int(now_ms), int(limit as u64)], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                event_from_row(row, 5)?,
            ))
        })
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()?;

    let until = int(now_ms.saturating_add(lease_ms));
    let mut update = conn
        .prepare_cached(
            "UPDATE invocations
                SET lease_token = ?2, attempts = ?3, leased_until = ?4, visible_ms = ?4
              WHERE id = ?1",
        )
        .db()?;
    let mut jobs = Vec::with_capacity(rows.len());
    for (id, plugin, token, attempts, created_ms, event) in rows {
        let (token, attempts) = (token + 1, attempts + 1);
        update.execute(params![id, token, attempts, until]).db()?;
        jobs.push(InvocationJob {
            id: uint(id),
            lease: LeaseToken::new(token.to_string()),
            event: event.decode()?,
            plugin,
            attempt: u32::try_from(attempts).unwrap_or(u32::MAX),
            lease_until_ms: uint(until),
            created_ms: uint(created_ms),
        });
    }
    Ok(jobs)
}

/// Record an outcome and create its deliveries; first completion wins.
/// With a lease, the deliveries are created leased (token 1) and returned.
pub(super) fn complete(
    conn: &Connection,
    job_id: u64,
    outcome: &InvocationOutcome,
    requests: Vec<OutboundRequest>,
    now_ms: u64,
    lease: Option<JobLease>,
) -> Result<Completion, StoreError> {
    let id = int(job_id);
    let (reason, kind, message) = verdict_columns(&outcome.verdict);
    let now = int(now_ms);
    // First completion wins: only a pending job is updated.
    let updated: Option<(i64, String)> = conn
        .prepare_cached(
            "UPDATE invocations
                SET status = 'done', leased_until = NULL, verdict = ?2, reason = ?3,
                    error_kind = ?4, error_message = ?5, duration_us = ?6, fuel = ?7,
                    completed_ms = ?8
              WHERE id = ?1 AND status = 'pending'
            RETURNING event_seq, plugin",
        )
        .db()?
        .query_row(
            params![
                id,
                outcome.verdict.as_str(),
                reason,
                kind,
                message,
                int(outcome.duration_us),
                outcome.fuel.map(int),
                now,
            ],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .db()?;
    let Some((event_seq, plugin)) = updated else {
        let exists = conn
            .prepare_cached("SELECT 1 FROM invocations WHERE id = ?1")
            .db()?
            .query_row([id], |_| Ok(()))
            .optional()
            .db()?
            .is_some();
        return Ok(if exists {
            Completion::AlreadyCompleted
        } else {
            Completion::NotFound
        });
    };
    // Handed deliveries carry their event's id.
    let event_id: String = match (lease, requests.is_empty()) {
        (Some(_), false) => conn
            .prepare_cached("SELECT id FROM events WHERE seq = ?1")
            .db()?
            .query_row([event_seq], |row| row.get(0))
            .db()?,
        _ => String::new(),
    };

    let mut insert = conn
        .prepare_cached(
            "INSERT INTO deliveries (id, invocation_id, event_seq, plugin, method, url, headers,
                                     body, status, visible_ms, next_attempt_ms, created_ms,
                                     updated_ms, lease_token, leased_until)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?10, ?10, ?10, ?11, ?12)",
        )
        .db()?;
    let until = lease.map(|l| int(l.now_ms.saturating_add(l.lease_ms)));
    let mut delivery_ids = Vec::with_capacity(requests.len());
    let mut leased = Vec::new();
    for request in requests {
        let delivery_id = new_delivery_id(now_ms);
        insert
            .execute(params![
                delivery_id,
                id,
                event_seq,
                plugin,
                request.method.as_str(),
                request.url,
                encode_headers(&request.headers)?,
                request.body,
                until.unwrap_or(now),
                now,
                i64::from(until.is_some()),
                until,
            ])
            .db()?;
        if until.is_some() {
            leased.push(DeliveryJob {
                id: delivery_id.clone(),
                lease: LeaseToken::new("1"),
                plugin: plugin.clone(),
                event_id: event_id.clone(),
                request,
                attempts_so_far: 0,
                created_ms: now_ms,
                lease_until_ms: until.map_or(now_ms, uint),
            });
        }
        delivery_ids.push(delivery_id);
    }
    Ok(Completion::Recorded {
        delivery_ids,
        leased,
    })
}

/// A verdict's `reason`, `error_kind` and `error_message` columns.
fn verdict_columns(verdict: &Verdict) -> (Option<&str>, Option<&str>, Option<&str>) {
    match verdict {
        Verdict::Fire => (None, None, None),
        Verdict::Skip { reason } => (Some(reason.as_str()), None, None),
        Verdict::Error { kind, message } => (None, Some(kind.as_str()), Some(message.as_str())),
    }
}

/// Settle as `outcome` those of the `limit` oldest parked jobs of `plugin`
/// that were created before `created_before_ms`. Parked jobs sit together
/// at the far end of the due-queue index in id order, which is creation
/// order, so this reads `limit` index entries at most.
pub(super) fn expire_parked(
    conn: &Connection,
    plugin: &str,
    created_before_ms: u64,
    outcome: &InvocationOutcome,
    now_ms: u64,
    limit: usize,
) -> Result<u64, StoreError> {
    let (reason, kind, message) = verdict_columns(&outcome.verdict);
    let changed = conn
        .prepare_cached(
            "UPDATE invocations
                SET status = 'done', leased_until = NULL, verdict = ?1, reason = ?2,
                    error_kind = ?3, error_message = ?4, duration_us = ?5, fuel = ?6,
                    completed_ms = ?7
              WHERE id IN (SELECT id FROM invocations INDEXED BY invocations_queue
                            WHERE status = 'pending' AND visible_ms = ?8 AND plugin = ?9
                            ORDER BY id LIMIT ?10)
                AND created_ms < ?11",
        )
        .db()?
        .execute(params![
            outcome.verdict.as_str(),
            reason,
            kind,
            message,
            int(outcome.duration_us),
            outcome.fuel.map(int),
            int(now_ms),
            int(PARKED),
            plugin,
            int(limit as u64),
            int(created_before_ms),
        ])
        .db()?;
    Ok(changed as u64)
}

/// Give a leased job back; the lease does not count as an attempt.
pub(super) fn release(
    conn: &Connection,
    job_id: u64,
    lease: &LeaseToken,
    due_ms: u64,
) -> Result<AckResult, StoreError> {
    let id = int(job_id);
    if let Some(token) = parse_token(lease) {
        let changed = conn
            .prepare_cached(
                "UPDATE invocations
                    SET leased_until = NULL, visible_ms = ?3, attempts = MAX(attempts - 1, 0)
                  WHERE id = ?1 AND lease_token = ?2 AND status = 'pending'
                    AND leased_until IS NOT NULL",
            )
            .db()?
            .execute(params![id, token, int(due_ms)])
            .db()?;
        if changed == 1 {
            return Ok(AckResult::Applied);
        }
    }
    let exists = conn
        .query_row("SELECT 1 FROM invocations WHERE id = ?1", [id], |_| Ok(()))
        .optional()
        .db()?
        .is_some();
    Ok(if exists {
        AckResult::LeaseLost
    } else {
        AckResult::NotFound
    })
}
