//! SQL for the management reads: delivery lookup and listing, per-plugin
//! statistics, queue depth and the next due time.

use std::collections::BTreeMap;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::DbResult;
use super::codec::{DELIVERY_COLUMNS, RawDelivery, int, uint};
use crate::store::StoreError;
use crate::store::records::{
    DeliveryPage, DeliveryQuery, DeliveryRecord, DeliveryStatus, PluginStats, QueueDepth,
};

/// Page size when the query asks for 0.
const DEFAULT_LIMIT: usize = 100;
/// Largest page.
const MAX_LIMIT: usize = 1000;
/// A page ends early once its requests hold this many bytes (after at
/// least one delivery), so that a page of large bodies stays a page.
const MAX_PAGE_BYTES: usize = 8 << 20;

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
    let cursor = match &query.cursor {
        Some(cursor) => Some(
            cursor
                .parse::<i64>()
                .map_err(|_| StoreError::InvalidCursor)?,
        ),
        None => None,
    };
    let mut conditions = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    // The page's rows named by key: the statement changes every page.
    let mut by_keys = false;
    if let Some(status) = query.status {
        args.push(Value::Text(status.as_str().to_owned()));
        conditions.push(format!("d.status = ?{}", args.len()));
    }
    if let Some(plugin) = &query.plugin {
        if query.status.is_none() {
            // The (plugin, status, seq) index serves a plugin's page only
            // status by status: find the page's rows that way, or every
            // page would read (and sort) all the plugin's deliveries.
            let seqs = newest_of_plugin(conn, plugin, cursor, limit + 1)?;
            if seqs.is_empty() {
                return Ok(DeliveryPage {
                    items: Vec::new(),
                    next_cursor: None,
                });
            }
            // The rows by their keys; naming the plugin as well would
            // have the planner read its whole index range again.
            let list = seqs.iter().map(i64::to_string).collect::<Vec<_>>();
            conditions.push(format!("d.seq IN ({})", list.join(",")));
            by_keys = true;
        } else {
            args.push(Value::Text(plugin.clone()));
            conditions.push(format!("d.plugin = ?{}", args.len()));
        }
    }
    if let Some(seq) = cursor {
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
    // Rows are read one by one and the page ends at MAX_PAGE_BYTES, so
    // large bodies are not all held before the page is cut.
    let read = |stmt: &mut rusqlite::Statement<'_>| {
        let mut rows = stmt.query(params_from_iter(args))?;
        let (mut raws, mut bytes) = (Vec::new(), 0);
        while let Some(row) = rows.next()? {
            let raw = RawDelivery::from_row(row)?;
            bytes += raw.request_bytes();
            if bytes > MAX_PAGE_BYTES && !raws.is_empty() {
                return Ok((raws, true));
            }
            raws.push(raw);
        }
        Ok((raws, false))
    };
    // A statement naming its rows changes every page: not worth caching.
    let (mut raws, cut) = if by_keys {
        read(&mut conn.prepare(&sql).db()?)
    } else {
        read(&mut *conn.prepare_cached(&sql).db()?)
    }
    .db()?;
    let next_cursor = if cut || raws.len() > limit {
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

/// The `seq` of a plugin's `n` newest deliveries below `before`: the
/// newest `n` of each status, merged.
fn newest_of_plugin(
    conn: &Connection,
    plugin: &str,
    before: Option<i64>,
    n: usize,
) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq FROM deliveries INDEXED BY deliveries_by_plugin
              WHERE plugin = ?1 AND status = ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4",
        )
        .db()?;
    let mut seqs = Vec::new();
    for status in DeliveryStatus::ALL {
        let rows = stmt
            .query_map(
                params![
                    plugin,
                    status.as_str(),
                    before.unwrap_or(i64::MAX),
                    int(n as u64)
                ],
                |row| row.get::<_, i64>(0),
            )
            .db()?;
        for seq in rows {
            seqs.push(seq.db()?);
        }
    }
    seqs.sort_unstable_by(|a, b| b.cmp(a));
    seqs.truncate(n);
    Ok(seqs)
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
