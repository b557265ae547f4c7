//! Opening the service's SQLite files: durable settings, and a file that cannot be read is moved
//! aside and rebuilt instead of stopping the service.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

/// Why a state file could not be opened even after rebuilding it (the directory is not writable,
/// the disk is full), or could not be upgraded: the service cannot keep its promises without it,
/// so it does not start. SQLite's error is kept as the source.
#[derive(Debug, thiserror::Error)]
#[error("state file {}: {}{source}", path.display(), if *upgrading { "could not be upgraded to this version's schema: " } else { "" })]
pub struct StoreError {
    path: PathBuf,
    /// The file opened, but a migration failed.
    upgrading: bool,
    source: rusqlite::Error,
}

impl StoreError {
    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// An open database and, if it had to be rebuilt, what happened (for the log and the health
/// status).
pub(crate) struct Opened {
    pub connection: Connection,
    pub warning: Option<String>,
}

/// Opens `path` with the durability the journal needs (WAL, `synchronous=FULL`: a committed row
/// survives a kill or a power cut) and applies `schema`. A file that is not a database, fails
/// the integrity check or rejects the schema is renamed to `<name>.corrupt-<time>` (kept for
/// forensics) and a fresh one is created. Then `migrations` bring it to the current version (see
/// [`migrate`]); a migration that fails stops the service instead: the file is readable and holds
/// money state, so it is never moved aside for that.
pub(crate) fn open(path: &Path, schema: &str, migrations: &[&str], cache_kib: u32) -> Result<Opened, StoreError> {
    let mut opened = open_readable(path, schema, cache_kib)?;
    migrate(&mut opened.connection, migrations).map_err(|source| StoreError {
        path: path.to_owned(),
        upgrading: true,
        source,
    })?;
    Ok(opened)
}

/// Brings the file from its `PRAGMA user_version` to `migrations.len()`, one migration per
/// transaction, each committed with its version: an upgrade interrupted half-way resumes at the
/// next start. A file of a newer version (a downgrade) is used as it is: migrations only add.
pub(crate) fn migrate(connection: &mut Connection, migrations: &[&str]) -> rusqlite::Result<()> {
    for (index, sql) in migrations.iter().enumerate() {
        let target = index as i64 + 1;
        let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if version >= target {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", target)?;
        tx.commit()?;
        tracing::info!(version = target, "state file upgraded");
    }
    Ok(())
}

/// A second connection to a database [`open`] has opened, for reads only (`query_only`): in WAL
/// mode it reads while the other connection commits, and sees every commit completed before
/// its read began.
pub(crate) fn open_reader(path: &Path, cache_kib: u32) -> Result<Connection, StoreError> {
    let open = || -> rusqlite::Result<Connection> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(Duration::from_secs(5))?;
        connection.execute_batch(&format!("PRAGMA query_only=1; PRAGMA cache_size=-{cache_kib};"))?;
        Ok(connection)
    };
    open().map_err(|source| StoreError { path: path.to_owned(), upgrading: false, source })
}

/// The thread that writes `path` could not be started.
pub(crate) fn thread_error(path: &Path, error: std::io::Error) -> StoreError {
    StoreError {
        path: path.to_owned(),
        upgrading: false,
        source: rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!("its writer thread could not be started: {error}")),
        ),
    }
}

fn open_readable(path: &Path, schema: &str, cache_kib: u32) -> Result<Opened, StoreError> {
    limit_sqlite_heap();
    let existed = path.exists();
    match try_open(path, schema, cache_kib) {
        Ok(connection) => {
            if !existed {
                tracing::info!(path = %path.display(), "state file created");
            }
            Ok(Opened { connection, warning: None })
        }
        Err(error) => {
            let aside = move_aside(path);
            let warning = format!(
                "state file {} could not be read ({error}); it was moved aside to {} and rebuilt empty",
                path.display(),
                aside.as_deref().map(|p| p.display().to_string()).unwrap_or_else(|| "(could not move it)".into()),
            );
            tracing::warn!("{warning}");
            if aside.is_none() {
                // Still in the way: remove it so that the service can run at all.
                let _ = std::fs::remove_file(path);
            }
            let connection = try_open(path, schema, cache_kib).map_err(|source| StoreError {
                path: path.to_owned(),
                upgrading: false,
                source,
            })?;
            Ok(Opened { connection, warning: Some(warning) })
        }
    }
}

/// The most heap SQLite should keep in this process (a soft limit: past it, SQLite reuses cached
/// pages instead of allocating more; nothing fails). The bundled SQLite is built with
/// `SQLITE_ENABLE_MEMORY_MANAGEMENT`, where all page caches draw on one shared budget (the sum of
/// every open cache's `cache_size`, temporary B-trees included), and under the daemon's load the
/// journal's cache was measured taking the others' share and growing for minutes: 2.4 → 3.9 MB in
/// 240 s with no limit. 2.5 MB holds the journal's cache, the state file's and the statements,
/// and is reached in the soak's third minute, within its warm-up, so the daemon's memory is level
/// from there (with 3 MB it was reached in the fourth minute: a slope after warm-up). Our SQLite is linked
/// into this library only, so the limit binds our connections and nothing of the host's.
const SQLITE_HEAP_LIMIT: i64 = 5 * 1024 * 1024 / 2;

fn limit_sqlite_heap() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: sets a process-wide SQLite setting; thread-safe in SQLite's serialized build.
    ONCE.call_once(|| unsafe {
        rusqlite::ffi::sqlite3_soft_heap_limit64(SQLITE_HEAP_LIMIT);
    });
}

fn try_open(path: &Path, schema: &str, cache_kib: u32) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    // Reading the header is the first thing that fails on a file that is not a database.
    let mode: String = connection.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), %mode, "WAL not available; using the default journal mode");
    }
    connection.execute_batch(&format!("PRAGMA synchronous=FULL; PRAGMA cache_size=-{cache_kib};"))?;
    let check: String = connection.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if check != "ok" {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(format!("integrity check failed: {check}")),
        ));
    }
    connection.execute_batch(schema)?;
    Ok(connection)
}

/// Renames the file (and its WAL and shared-memory companions) out of the way.
fn move_aside(path: &Path) -> Option<PathBuf> {
    if !path.exists() {
        return None;
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let aside = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
    std::fs::rename(path, &aside).ok()?;
    for suffix in ["-wal", "-shm"] {
        let companion = PathBuf::from(format!("{}{suffix}", path.display()));
        if companion.exists() {
            let _ = std::fs::rename(&companion, format!("{}{suffix}", aside.display()));
        }
    }
    Some(aside)
}

/// Now, as stored: RFC 3339 in UTC with milliseconds, so that text order is time order.
pub(crate) fn now_text() -> String {
    time_text(chrono::Utc::now())
}

pub(crate) fn time_text(time: chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parses a time filter: RFC 3339 (any offset) or a plain `YYYY-MM-DD` (midnight UTC).
pub(crate) fn parse_time(text: &str) -> Option<String> {
    let text = text.trim();
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(time_text(time.with_timezone(&chrono::Utc)));
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(time_text(date.and_hms_opt(0, 0, 0)?.and_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS t (x INTEGER);";

    #[test]
    fn a_garbage_file_is_moved_aside_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        std::fs::write(&path, b"this is not a database, just garbage bytes ....................").unwrap();
        let opened = open(&path, SCHEMA, &[], 64).unwrap();
        let warning = opened.warning.expect("reported");
        assert!(warning.contains("moved aside"), "{warning}");
        opened.connection.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1);
    }

    #[test]
    fn a_missing_file_is_created_without_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let opened = open(&dir.path().join("new.sqlite"), SCHEMA, &[], 64).unwrap();
        assert!(opened.warning.is_none());
    }

    #[test]
    fn a_failed_upgrade_names_the_file_and_keeps_sqlites_error_as_the_source() {
        use std::error::Error as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        let error = open(&path, SCHEMA, &["THIS IS NOT SQL"], 64).err().expect("the migration fails");
        let sqlite = error.source().and_then(|s| s.downcast_ref::<rusqlite::Error>()).expect("SQLite's error");
        assert_eq!(
            error.to_string(),
            format!("state file {}: could not be upgraded to this version's schema: {sqlite}", path.display())
        );
        assert_eq!(error.path(), path);
    }

    #[test]
    fn time_filters_accept_rfc3339_and_dates() {
        assert_eq!(parse_time("2025-06-09").unwrap(), "2025-06-09T00:00:00.000Z");
        assert_eq!(parse_time("2025-06-09T17:30:00+03:00").unwrap(), "2025-06-09T14:30:00.000Z");
        assert!(parse_time("yesterday").is_none());
    }
}
