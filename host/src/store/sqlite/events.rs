//! SQL for events: idempotent insertion with invocation jobs, and the
//! event detail view.

use rusqlite::{Connection, OptionalExtension, params};

use super::codec::{
    DELIVERY_COLUMNS, EVENT_COLUMNS, INVOCATION_COLUMNS, RawDelivery, RawInvocation,
    encode_properties, event_from_row, int, uint,
};
use super::{DbResult, invocations};
use crate::store::StoreError;
use crate::store::queue::{Inserted, InvocationJob, JobLease, LeaseToken, NewEvent};
use crate::store::records::EventDetail;

/// Insert `batch` (writer side): duplicates by id are skipped. With a
/// lease, the jobs are created leased (token 1, attempt 1) and returned;
/// the jobs of paused plugins are created parked.
pub(super) fn insert_events(
    conn: &Connection,
    batch: &[NewEvent],
    lease: Option<JobLease>,
) -> Result<Vec<Inserted>, StoreError> {
    let mut insert_event = conn
        .prepare_cached(
            "INSERT INTO events (id, name, user_id, timestamp_ms, properties, received_ms, source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (id) DO NOTHING",
        )
        .db()?;
    let mut insert_job = conn
        .prepare_cached(
            "INSERT INTO invocations (event_seq, plugin, status, visible_ms, created_ms,
                                      lease_token, attempts, leased_until)
             VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?5, ?6)
             ON CONFLICT (event_seq, plugin) DO NOTHING",
        )
        .db()?;
    let mut out = Vec::with_capacity(batch.len());
    for (index, new) in batch.iter().enumerate() {
        // '' for a native event; NULL only in rows stored before schema v7,
        // whose source is unknown.
        let source = new.source.as_deref().unwrap_or("");
        let e = &new.event;
        let received = int(new.received_ms);
        let changed = insert_event
            .execute(params![
                e.id,
                e.name,
                e.user_id,
                int(e.timestamp_ms),
                encode_properties(&e.properties)?,
                received,
                source,
            ])
            .db()?;
        if changed == 0 {
            // The same event again, unless another source holds the id. A
            // row from before v7 (no source kept) counts as the same, so a
            // retry across the upgrade stays a duplicate.
            let taken_by: Option<String> = conn
                .prepare_cached("SELECT source FROM events WHERE id = ?1")
                .db()?
                .query_row([&e.id], |row| row.get(0))
                .db()?;
            if let Some(holder) = taken_by
                && holder != source
            {
                return Err(StoreError::IdTaken {
                    index,
                    id: e.id.clone(),
                    taken_by: (!holder.is_empty()).then_some(holder),
                });
            }
            out.push(Inserted::Duplicate);
            continue;
        }
        let seq = conn.last_insert_rowid();
        let mut jobs = Vec::new();
        for plugin in &new.plugins {
            match lease {
                None => {
                    insert_job
                        .execute(params![seq, plugin, received, received, 0, None::<i64>])
                        .db()?;
                }
                Some(lease) => {
                    let until = int(lease.now_ms.saturating_add(lease.lease_ms));
                    if insert_job
                        .execute(params![seq, plugin, until, received, 1, until])
                        .db()?
                        == 1
                    {
                        jobs.push(InvocationJob {
                            id: uint(conn.last_insert_rowid()),
                            lease: LeaseToken::new("1"),
                            event: e.clone(),
                            plugin: plugin.clone(),
                            attempt: 1,
                            lease_until_ms: uint(until),
                            created_ms: new.received_ms,
                        });
                    }
                }
            }
        }
        for plugin in &new.parked {
            insert_job
                .execute(params![
                    seq,
                    plugin,
                    int(invocations::PARKED),
                    received,
                    0,
                    None::<i64>
                ])
                .db()?;
        }
        out.push(Inserted::New { jobs });
    }
    Ok(out)
}

/// The detail view of one event (reader side).
pub(super) fn get_event(conn: &Connection, id: &str) -> Result<Option<EventDetail>, StoreError> {
    let found = conn
        .query_row(
            &format!("SELECT e.seq, e.received_ms, {EVENT_COLUMNS} FROM events e WHERE e.id = ?1"),
            [id],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    event_from_row(row, 2)?,
                ))
            },
        )
        .optional()
        .db()?;
    let Some((seq, received_ms, raw)) = found else {
        return Ok(None);
    };

    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {INVOCATION_COLUMNS} FROM invocations i WHERE i.event_seq = ?1 ORDER BY i.id"
        ))
        .db()?;
    let raws = stmt
        .query_map([seq], RawInvocation::from_row)
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()?;
    let invocations = raws
        .into_iter()
        .map(RawInvocation::decode)
        .collect::<Result<Vec<_>, _>>()?;

    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq
              WHERE d.event_seq = ?1 ORDER BY d.seq"
        ))
        .db()?;
    let raws = stmt
        .query_map([seq], RawDelivery::from_row)
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()?;
    let deliveries = raws
        .into_iter()
        .map(|d| d.decode(conn))
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Some(EventDetail {
        event: raw.decode()?,
        received_ms: uint(received_ms),
        invocations,
        deliveries,
    }))
}
