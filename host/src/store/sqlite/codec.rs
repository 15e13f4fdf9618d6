//! Rows ↔ domain values: column lists, raw row structs read with rusqlite,
//! and their checked conversion into `model`/`store` types (anything that
//! does not decode is [`StoreError::Corrupt`]).

use rusqlite::{Connection, Row};

use super::DbResult;
use crate::model::{Event, Method, OutboundRequest};
use crate::runtime::ErrorKind;
use crate::store::StoreError;
use crate::store::queue::{Attempt, AttemptOutcome, InvocationOutcome, Verdict};
use crate::store::records::{DeliveryRecord, DeliveryStatus, InvocationRecord, InvocationStatus};

/// A `u64` as SQLite stores it (values past `i64::MAX` saturate).
pub(super) fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// An SQLite integer as a `u64` (negative values, which we never write,
/// read as 0).
pub(super) fn uint(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

fn parse_method(s: &str) -> Result<Method, StoreError> {
    Ok(match s {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        other => return Err(corrupt("method", other)),
    })
}

pub(super) fn encode_headers(headers: &[(String, String)]) -> Result<String, StoreError> {
    serde_json::to_string(headers).map_err(|e| StoreError::Backend(e.to_string()))
}

pub(super) fn encode_properties(
    props: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, StoreError> {
    serde_json::to_string(props).map_err(|e| StoreError::Backend(e.to_string()))
}

fn parse_error_kind(s: &str) -> Result<ErrorKind, StoreError> {
    [
        ErrorKind::Timeout,
        ErrorKind::Trap,
        ErrorKind::Memory,
        ErrorKind::Fuel,
        ErrorKind::InvalidOutput,
        ErrorKind::Plugin,
        ErrorKind::Refused,
        ErrorKind::Busy,
        ErrorKind::Expired,
    ]
    .into_iter()
    .find(|k| k.as_str() == s)
    .ok_or_else(|| corrupt("error kind", s))
}

/// Columns of an event, for [`event_from_row`] (`e` aliases `events`).
pub(super) const EVENT_COLUMNS: &str = "e.id, e.name, e.user_id, e.timestamp_ms, e.properties";

/// Read an event from `EVENT_COLUMNS` starting at column `at`.
pub(super) fn event_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<RawEvent> {
    Ok(RawEvent {
        id: row.get(at)?,
        name: row.get(at + 1)?,
        user_id: row.get(at + 2)?,
        timestamp_ms: row.get(at + 3)?,
        properties: row.get(at + 4)?,
    })
}

/// An event as read, before its properties are parsed.
pub(super) struct RawEvent {
    id: String,
    name: String,
    user_id: Option<String>,
    timestamp_ms: i64,
    properties: String,
}

impl RawEvent {
    pub(super) fn decode(self) -> Result<Event, StoreError> {
        let properties =
            serde_json::from_str(&self.properties).map_err(|e| corrupt("event properties", e))?;
        Ok(Event {
            id: self.id,
            name: self.name,
            user_id: self.user_id,
            timestamp_ms: uint(self.timestamp_ms),
            properties,
        })
    }
}

/// Columns of a request, for [`request_from_row`] (`d` aliases `deliveries`).
pub(super) const REQUEST_COLUMNS: &str = "d.method, d.url, d.headers, d.body";

/// A request as read.
pub(super) struct RawRequest {
    method: String,
    url: String,
    headers: String,
    body: Vec<u8>,
}

pub(super) fn request_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<RawRequest> {
    Ok(RawRequest {
        method: row.get(at)?,
        url: row.get(at + 1)?,
        headers: row.get(at + 2)?,
        body: row.get(at + 3)?,
    })
}

impl RawRequest {
    pub(super) fn decode(self) -> Result<OutboundRequest, StoreError> {
        Ok(OutboundRequest {
            method: parse_method(&self.method)?,
            url: self.url,
            headers: serde_json::from_str(&self.headers)
                .map_err(|e| corrupt("request headers", e))?,
            body: self.body,
        })
    }
}

/// Columns of a delivery record (`d` = deliveries, `e` = events), for
/// [`RawDelivery::from_row`]; `d.seq` comes first.
pub(super) const DELIVERY_COLUMNS: &str = "d.seq, d.id, e.id, d.plugin, d.status, \
     d.next_attempt_ms, d.leased_until, d.failure, d.created_ms, d.updated_ms, \
     d.method, d.url, d.headers, d.body";

/// A delivery row as read.
pub(super) struct RawDelivery {
    pub(super) seq: i64,
    id: String,
    event_id: String,
    plugin: String,
    status: String,
    next_attempt_ms: Option<i64>,
    leased_until: Option<i64>,
    failure: Option<String>,
    created_ms: i64,
    updated_ms: i64,
    request: RawRequest,
}

impl RawDelivery {
    /// Bytes of its request (URL, headers, body): what a listing carries.
    pub(super) fn request_bytes(&self) -> usize {
        self.request.url.len() + self.request.headers.len() + self.request.body.len()
    }

    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            seq: row.get(0)?,
            id: row.get(1)?,
            event_id: row.get(2)?,
            plugin: row.get(3)?,
            status: row.get(4)?,
            next_attempt_ms: row.get(5)?,
            leased_until: row.get(6)?,
            failure: row.get(7)?,
            created_ms: row.get(8)?,
            updated_ms: row.get(9)?,
            request: request_from_row(row, 10)?,
        })
    }

    /// Decode, reading the delivery's attempts with `conn`.
    pub(super) fn decode(self, conn: &Connection) -> Result<DeliveryRecord, StoreError> {
        Ok(DeliveryRecord {
            attempts: attempts_of(conn, self.seq)?,
            id: self.id,
            plugin: self.plugin,
            event_id: self.event_id,
            status: DeliveryStatus::parse(&self.status)
                .ok_or_else(|| corrupt("delivery status", &self.status))?,
            request: self.request.decode()?,
            next_attempt_ms: self.next_attempt_ms.map(uint),
            leased_until: self.leased_until.map(uint),
            failure: self.failure,
            created_ms: uint(self.created_ms),
            updated_ms: uint(self.updated_ms),
        })
    }
}

/// Every attempt of one delivery, oldest first.
fn attempts_of(conn: &Connection, delivery_seq: i64) -> Result<Vec<Attempt>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT started_ms, duration_ms, status_code, error, outcome, response
               FROM attempts WHERE delivery_seq = ?1 ORDER BY id",
        )
        .db()?;
    let rows = stmt
        .query_map([delivery_seq], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Option<i64>>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, Option<String>>(5)?,
            ))
        })
        .db()?;
    let mut out = Vec::new();
    for row in rows {
        let (started, duration, code, error, outcome, response) = row.db()?;
        out.push(Attempt {
            started_ms: uint(started),
            duration_ms: uint(duration),
            status_code: code.and_then(|c| u16::try_from(c).ok()),
            error,
            outcome: AttemptOutcome::parse(&outcome)
                .ok_or_else(|| corrupt("attempt outcome", &outcome))?,
            response,
        });
    }
    Ok(out)
}

/// Columns of an invocation record (`i` = invocations).
pub(super) const INVOCATION_COLUMNS: &str = "i.id, i.plugin, i.status, i.attempts, \
     i.leased_until, i.verdict, i.reason, i.error_kind, i.error_message, i.duration_us, \
     i.fuel, i.completed_ms";

/// An invocation row as read.
pub(super) struct RawInvocation {
    id: i64,
    plugin: String,
    status: String,
    attempts: i64,
    leased_until: Option<i64>,
    verdict: Option<String>,
    reason: Option<String>,
    error_kind: Option<String>,
    error_message: Option<String>,
    duration_us: Option<i64>,
    fuel: Option<i64>,
    completed_ms: Option<i64>,
}

impl RawInvocation {
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            plugin: row.get(1)?,
            status: row.get(2)?,
            attempts: row.get(3)?,
            leased_until: row.get(4)?,
            verdict: row.get(5)?,
            reason: row.get(6)?,
            error_kind: row.get(7)?,
            error_message: row.get(8)?,
            duration_us: row.get(9)?,
            fuel: row.get(10)?,
            completed_ms: row.get(11)?,
        })
    }

    pub(super) fn decode(self) -> Result<InvocationRecord, StoreError> {
        let status = match self.status.as_str() {
            "pending" => InvocationStatus::Pending,
            "done" => InvocationStatus::Done,
            other => return Err(corrupt("invocation status", other)),
        };
        let verdict = match self.verdict.as_deref() {
            None => None,
            Some("fire") => Some(Verdict::Fire),
            Some("skip") => Some(Verdict::Skip {
                reason: self.reason.unwrap_or_default(),
            }),
            Some("error") => Some(Verdict::Error {
                kind: parse_error_kind(self.error_kind.as_deref().unwrap_or_default())?,
                message: self.error_message.unwrap_or_default(),
            }),
            Some(other) => return Err(corrupt("verdict", other)),
        };
        Ok(InvocationRecord {
            id: uint(self.id),
            plugin: self.plugin,
            status,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            leased_until: self.leased_until.map(uint),
            outcome: verdict.map(|verdict| InvocationOutcome {
                verdict,
                duration_us: self.duration_us.map(uint).unwrap_or(0),
                fuel: self.fuel.map(uint),
            }),
            completed_ms: self.completed_ms.map(uint),
        })
    }
}
