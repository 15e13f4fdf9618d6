//! `wasmhook backup` and `wasmhook restore`: the command-line side of the
//! store's backup and restore (`store/sqlite/backup.rs`), which finds the
//! database, reports what was written, and maps failures to exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::StoreArgs;
use crate::config::Config;
use crate::store::{BackupError, BackupReport, SqliteStore};

/// `wasmhook backup OUT`.
pub fn backup(store: &StoreArgs, out: &Path) -> ExitCode {
    let Some(db) = database(store) else {
        return ExitCode::from(2);
    };
    finish(SqliteStore::backup(&db, out), |r| {
        format!(
            "backed up {} to {}: {}",
            db.display(),
            r.path.display(),
            summary(r)
        )
    })
}

/// `wasmhook restore BACKUP`.
pub fn restore(store: &StoreArgs, backup: &Path) -> ExitCode {
    let Some(db) = database(store) else {
        return ExitCode::from(2);
    };
    finish(SqliteStore::restore(backup, &db), |r| {
        let kept = r.replaced.as_ref().map_or_else(String::new, |p| {
            format!("; the database it replaced is kept as {}", p.display())
        });
        format!(
            "restored {} from {}: {}{kept}",
            db.display(),
            backup.display(),
            summary(r)
        )
    })
}

/// The database file: `--db`, or `store.path` of the config.
fn database(store: &StoreArgs) -> Option<PathBuf> {
    if let Some(db) = &store.db {
        return Some(db.clone());
    }
    match Config::load(&store.config) {
        Ok(config) => Some(config.store.path),
        Err(e) => {
            eprintln!("wasmhook: {e} (or name the database with --db)");
            None
        }
    }
}

fn summary(r: &BackupReport) -> String {
    format!(
        "{} events, {:.1} MiB, schema version {}",
        r.events,
        r.bytes as f64 / (1024.0 * 1024.0),
        r.schema_version
    )
}

fn finish(
    result: Result<BackupReport, BackupError>,
    done: impl Fn(&BackupReport) -> String,
) -> ExitCode {
    match result {
        Ok(report) => {
            println!("{}", done(&report));
            ExitCode::SUCCESS
        }
        Err(e @ BackupError::Failed { .. }) => {
            eprintln!("wasmhook: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("wasmhook: {e}");
            ExitCode::from(2)
        }
    }
}
