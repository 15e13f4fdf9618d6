//! SQLite's error codes into [`StoreError`]: the operational failures that
//! can go away without a restart (disk full, read-only file, I/O error,
//! locked database) become [`StoreError::Unavailable`] with a short public
//! reason, so the HTTP edge can answer 503 and say why; damaged files
//! become [`StoreError::Corrupt`]; everything else (SQL bugs, constraint
//! violations) stays [`StoreError::Backend`] with SQLite's message.

use rusqlite::ErrorCode;

use crate::store::StoreError;

/// Classify a rusqlite error.
pub(super) fn classify(e: rusqlite::Error) -> StoreError {
    let rusqlite::Error::SqliteFailure(failure, _) = &e else {
        return StoreError::Backend(e.to_string());
    };
    let reason = match failure.code {
        ErrorCode::DiskFull => "disk full",
        // A write refused by the OS: EFBIG (file-size limit), ENOSPC while
        // appending to the WAL, EIO. SQLite reports ENOSPC as `DiskFull`
        // only for some writes, so these are named together.
        ErrorCode::SystemIoFailure => "cannot write the database file (disk full or I/O error)",
        ErrorCode::ReadOnly => "database is read-only",
        ErrorCode::PermissionDenied => "permission denied on the database file",
        ErrorCode::CannotOpen => "cannot open the database file",
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
            "database is locked by another connection"
        }
        ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
            return StoreError::Corrupt(e.to_string());
        }
        _ => return StoreError::Backend(e.to_string()),
    };
    tracing::warn!(error = %e, reason, "store: database unavailable");
    StoreError::Unavailable { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn operational_failures_are_unavailable_with_a_public_reason() {
        use rusqlite::ffi;
        let cases = [
            (ffi::SQLITE_FULL, "disk full"),
            (
                ffi::SQLITE_IOERR_WRITE,
                "cannot write the database file (disk full or I/O error)",
            ),
            (
                ffi::SQLITE_IOERR_FSYNC,
                "cannot write the database file (disk full or I/O error)",
            ),
            (ffi::SQLITE_READONLY, "database is read-only"),
            (ffi::SQLITE_READONLY_DBMOVED, "database is read-only"),
            (ffi::SQLITE_CANTOPEN, "cannot open the database file"),
            (ffi::SQLITE_BUSY, "database is locked by another connection"),
            (ffi::SQLITE_PERM, "permission denied on the database file"),
        ];
        for (code, want) in cases {
            match classify(sqlite(code)) {
                StoreError::Unavailable { reason } => assert_eq!(reason, want, "code {code}"),
                other => panic!("code {code}: {other:?}"),
            }
        }
    }

    #[test]
    fn damage_is_corrupt_and_bugs_stay_backend_errors() {
        use rusqlite::ffi;
        assert!(matches!(
            classify(sqlite(ffi::SQLITE_CORRUPT)),
            StoreError::Corrupt(_)
        ));
        assert!(matches!(
            classify(sqlite(ffi::SQLITE_CONSTRAINT_UNIQUE)),
            StoreError::Backend(_)
        ));
        assert!(matches!(
            classify(rusqlite::Error::QueryReturnedNoRows),
            StoreError::Backend(_)
        ));
    }

    #[test]
    fn the_message_names_the_reason() {
        let e = classify(sqlite(rusqlite::ffi::SQLITE_FULL));
        assert_eq!(e.to_string(), "storage unavailable: disk full");
    }
}
