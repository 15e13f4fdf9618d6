//! SQL for the management reads: delivery lookup and listing, per-plugin
//! statistics, queue depth and the next due time.

use std::collections::BTreeMap;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params_from_iter};

use super::DbResult;
use super::codec::{DELIVERY_COLUMNS, RawDelivery, int, uint};
use crate::store::StoreError;
use crate::store::records::{DeliveryPage, DeliveryQuery, DeliveryRecord, PluginStats, QueueDepth};

/// Page size when the query asks for 0.
const DEFAULT_LIMIT: usize = 100;
/// Largest page.
const MAX_LIMIT: usize = 1000;

/// One delivery with its attempts.
pub(super) fn get_delivery(
    conn: &Connection,
    delivery_id: &str,
) -> Result<Option<DeliveryRecord>, StoreError> {
    let raw = conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq
              WHERE d.id = ?1"
        ))
        .db()?
        .query_row([delivery_id], RawDelivery::from_row)
        .optional()
        .db()?;
    raw.map(|raw| raw.decode(conn)).transpose()
}

/// A page of deliveries, newest first. The cursor is the last returned
/// row's `seq`, in decimal.
pub(super) fn list_deliveries(
    conn: &Connection,
    query: &DeliveryQuery,
) -> Result<DeliveryPage, StoreError> {
    let limit = match query.limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    let mut conditions = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if let Some(status) = query.status {
        args.push(Value::Text(status.as_str().to_owned()));
        conditions.push(format!("d.status = ?{}", args.len()));
    }
    if let Some(plugin) = &query.plugin {
        args.push(Value::Text(plugin.clone()));
        conditions.push(format!("d.plugin = ?{}", args.len()));
    }
    if let Some(cursor) = &query.cursor {
        let seq: i64 = cursor.parse().map_err(|_| StoreError::InvalidCursor)?;
        args.push(Value::Integer(seq));
        conditions.push(format!("d.seq < ?{}", args.len()));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    // One row more than asked tells whether there is a next page.
    args.push(Value::Integer(int(limit as u64 + 1)));
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq
          {filter} ORDER BY d.seq DESC LIMIT ?{}",
        args.len()
    );
    let mut raws = conn
        .prepare_cached(&sql)
        .db()?
        .query_map(params_from_iter(args), RawDelivery::from_row)
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()?;
    let next_cursor = if raws.len() > limit {
        raws.truncate(limit);
        raws.last().map(|last| last.seq.to_string())
    } else {
        None
    };
    let items = raws
        .into_iter()
        .map(|raw| raw.decode(conn))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DeliveryPage { items, next_cursor })
}

/// Counts per plugin, from the counts the schema's triggers keep (see
/// `schema.rs`, V3), plus the parked share of the pending invocations.
pub(super) fn plugin_stats(conn: &Connection) -> Result<BTreeMap<String, PluginStats>, StoreError> {
    let mut stats: BTreeMap<String, PluginStats> = BTreeMap::new();

    let mut stmt = conn
        .prepare_cached("SELECT plugin, kind, n FROM plugin_counts WHERE n <> 0")
        .db()?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })
        .db()?;
    for row in rows {
        let (plugin, kind, n) = row.db()?;
        let entry = stats.entry(plugin).or_default();
        let (inv, del) = (&mut entry.invocations, &mut entry.deliveries);
        let slot = match kind.as_str() {
            "invocation.pending" => &mut inv.pending,
            "invocation.fire" => &mut inv.fire,
            "invocation.skip" => &mut inv.skip,
            "invocation.error" => &mut inv.error,
            "invocation.expired" => &mut inv.expired,
            "delivery.pending" => &mut del.pending,
            "delivery.succeeded" => &mut del.succeeded,
            "delivery.failed" => &mut del.failed,
            other => return Err(StoreError::Corrupt(format!("count of {other:?}"))),
        };
        *slot = u64::try_from(n)
            .map_err(|_| StoreError::Corrupt(format!("count of {kind:?} is {n}")))?;
    }

    let mut stmt = conn
        .prepare_cached("SELECT namespace, keys, bytes FROM kv_usage WHERE keys <> 0")
        .db()?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })
        .db()?;
    for row in rows {
        let (plugin, keys, bytes) = row.db()?;
        let corrupt = || {
            StoreError::Corrupt(format!(
                "kv usage of {plugin:?}: {keys} keys, {bytes} bytes"
            ))
        };
        let usage = crate::store::KvUsage {
            keys: u64::try_from(keys).map_err(|_| corrupt())?,
            bytes: u64::try_from(bytes).map_err(|_| corrupt())?,
        };
        stats.entry(plugin).or_default().kv = usage;
    }

    // Parked jobs sit at the far end of the due-queue index.
    let mut stmt = conn
        .prepare_cached(
            "SELECT plugin, COUNT(*) FROM invocations INDEXED BY invocations_queue
              WHERE status = 'pending' AND visible_ms >= ?1
              GROUP BY plugin",
        )
        .db()?;
    let rows = stmt
        .query_map([int(super::invocations::PARKED)], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })
        .db()?;
    for row in rows {
        let (plugin, n) = row.db()?;
        stats.entry(plugin).or_default().invocations.parked = uint(n);
    }

    Ok(stats)
}

/// Pending and due counts of both queues.
pub(super) fn queue_depth(conn: &Connection, now_ms: u64) -> Result<QueueDepth, StoreError> {
    let count = |table: &str| -> Result<(u64, u64), StoreError> {
        conn.prepare_cached(&format!(
            "SELECT COUNT(*), COALESCE(SUM(visible_ms <= ?1), 0)
               FROM {table} INDEXED BY {table}_queue
              WHERE status = 'pending'"
        ))
        .db()?
        .query_row([int(now_ms)], |row| {
            Ok((uint(row.get(0)?), uint(row.get(1)?)))
        })
        .db()
    };
    let (invocations_pending, invocations_due) = count("invocations")?;
    let (deliveries_pending, deliveries_due) = count("deliveries")?;
    Ok(QueueDepth {
        invocations_pending,
        invocations_due,
        deliveries_pending,
        deliveries_due,
    })
}

/// The earliest `visible_ms` among pending jobs of both queues (parked
/// invocations are not due at any time).
pub(super) fn next_due_ms(conn: &Connection) -> Result<Option<u64>, StoreError> {
    let min = |table: &str| -> Result<Option<i64>, StoreError> {
        conn.prepare_cached(&format!(
            "SELECT MIN(visible_ms) FROM {table} INDEXED BY {table}_queue
              WHERE status = 'pending' AND visible_ms < {}",
            i64::MAX
        ))
        .db()?
        .query_row([], |row| row.get(0))
        .db()
    };
    let earliest = match (min("invocations")?, min("deliveries")?) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(earliest.map(uint))
}
