//! A small pool of read-only connections. In WAL mode readers never wait
//! for the writer, and each read runs in its own transaction so a multi-query
//! read (an event with its deliveries) sees one consistent snapshot.

use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

use super::{DbResult, schema};
use crate::store::StoreError;

/// Idle connections kept for reuse; more are opened under load and closed
/// when returned to a full pool.
const MAX_IDLE: usize = 8;

pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take(&self) -> Result<Connection, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX
                        | OpenFlags::SQLITE_OPEN_URI,
                )
                .db()?;
                schema::configure_reader(&conn)?;
                Ok(conn)
            }
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Run `read` in a read transaction on a pooled connection. Blocks: call
    /// from a blocking thread.
    pub(super) fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.take()?;
        let result = {
            let tx = conn.unchecked_transaction().db()?;
            read(&tx)
            // The transaction only read; dropping it rolls back.
        };
        self.give_back(conn);
        result
    }
}
