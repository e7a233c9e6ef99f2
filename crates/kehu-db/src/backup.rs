//! Online backups and restores at the storage level.
//!
//! SQLite: `VACUUM INTO` on a reader connection, a consistent snapshot taken while writers go
//! on (never a copy of the live file); a restore checks the file (`PRAGMA integrity_check`,
//! schema version), keeps the replaced database as `*.before-restore`, and refuses while a
//! server holds the database (`ServerLock`). PostgreSQL: `pg_dump --format=custom` when the
//! tool is installed (restored with `pg_restore` into an empty database), else the archive.

use crate::conn::{Backend, Db, Raw};
use kehu_core::AppError;
use std::path::{Path, PathBuf};

fn io(e: std::io::Error) -> AppError {
    AppError::invalid("backup.io").with_detail(e.to_string())
}

/// The path of the SQLite file behind a `sqlite://…` URL.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return None;
    }
    let p = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    Some(PathBuf::from(p.split('?').next().unwrap_or(p)))
}

/// `name` + `suffix` beside `path`.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Write a consistent copy of a SQLite database to `dest` (written under a temporary name and
/// renamed when complete). Returns its size.
pub async fn vacuum_into(db: &Db, dest: &Path) -> Result<u64, AppError> {
    if db.backend() != Backend::Sqlite {
        return Err(AppError::internal("VACUUM INTO is SQLite only"));
    }
    if dest.exists() {
        return Err(AppError::conflict("backup.exists").with_detail(dest.display().to_string()));
    }
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = with_suffix(dest, ".partial");
    let _ = std::fs::remove_file(&tmp);
    let target = tmp.to_str().ok_or_else(|| AppError::invalid("backup.io").with_detail("path is not UTF-8"))?;
    // On a reader: the copy is one read transaction, writers are not blocked.
    if let Err(e) = db.all(&Raw::new("VACUUM INTO $1", vec![target.into()])).await {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.into());
    }
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io)?;
    std::fs::rename(&tmp, dest).map_err(io)?;
    Ok(std::fs::metadata(dest).map_err(io)?.len())
}

/// Check a SQLite backup file: a SQLite database, `PRAGMA integrity_check` ok, a Kehu schema
/// no newer than this build. Returns its migration versions.
pub async fn check_sqlite_file(path: &Path) -> Result<Vec<i64>, AppError> {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Row};
    let mut head = [0u8; 16];
    let ok_header = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .map(|_| &head == b"SQLite format 3\0");
    match ok_header {
        Ok(true) => {}
        Ok(false) => return Err(AppError::invalid("backup.not_sqlite")),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(AppError::invalid("backup.not_sqlite")),
        Err(e) => return Err(io(e)),
    }
    let mut c = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .map_err(|e| AppError::invalid("backup.not_sqlite").with_detail(e.to_string()))?;
    let rows = sqlx::query("PRAGMA integrity_check")
        .fetch_all(&mut c)
        .await
        .map_err(|e| AppError::invalid("backup.damaged").with_detail(e.to_string()))?;
    let first: Option<String> = rows.first().and_then(|r| r.try_get(0).ok());
    if rows.len() != 1 || first.as_deref() != Some("ok") {
        return Err(AppError::invalid("backup.damaged").with_detail(format!("{first:?}")));
    }
    let versions: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(&mut c)
        .await
        .map_err(|e| AppError::invalid("backup.not_kehu").with_detail(e.to_string()))?
        .iter()
        .filter_map(|r| r.try_get(0).ok())
        .collect();
    let known: Vec<i64> = crate::schema::versions();
    if versions.iter().any(|v| *v < 1000 && !known.contains(v)) {
        return Err(AppError::invalid("archive.schema_newer"));
    }
    if versions.is_empty() {
        return Err(AppError::invalid("backup.not_kehu"));
    }
    Ok(versions)
}

/// A lock file beside the SQLite database, held by `kehu serve` for as long as it runs. A
/// restore takes it too, so it cannot replace a database a server has open.
pub struct ServerLock {
    _file: std::fs::File,
}

impl ServerLock {
    pub fn acquire(db_path: &Path) -> Result<ServerLock, AppError> {
        let path = with_suffix(db_path, ".lock");
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(ServerLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(AppError::conflict("backup.server_running")),
            Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

/// Replace the SQLite database at `db_path` with the backup `file`: checked first, copied
/// beside the database, then swapped in; the replaced database (with its WAL merged) is kept
/// as `<db>.before-restore`. Returns where the old database went.
pub async fn restore_sqlite(db_path: &Path, file: &Path) -> Result<Option<PathBuf>, AppError> {
    let _lock = ServerLock::acquire(db_path)?;
    check_sqlite_file(file).await?;
    let incoming = with_suffix(db_path, ".restoring");
    std::fs::copy(file, &incoming).map_err(io)?;
    std::fs::File::open(&incoming).and_then(|f| f.sync_all()).map_err(io)?;
    let mut kept = None;
    if db_path.exists() {
        // Merge the WAL into the file (the last connection to close checkpoints it).
        let url = format!("sqlite://{}", db_path.display());
        let db = Db::connect(&url, &Default::default()).await?;
        db.exec_raw("PRAGMA wal_checkpoint(TRUNCATE)").await?;
        db.close().await;
        let mut old = with_suffix(db_path, ".before-restore");
        if old.exists() {
            old = with_suffix(db_path, &format!(".before-restore-{}", kehu_core::now_micros() / 1_000_000));
        }
        std::fs::rename(db_path, &old).map_err(io)?;
        for s in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(with_suffix(db_path, s));
        }
        kept = Some(old);
    }
    std::fs::rename(&incoming, db_path).map_err(io)?;
    Ok(kept)
}

/// Whether `pg_dump` is installed (and answers).
pub fn pg_dump_available() -> bool {
    std::process::Command::new("pg_dump").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

/// `pg_dump --format=custom` of the database (or one schema) at `url` into `dest`.
pub fn pg_dump(url: &str, schema: Option<&str>, dest: &Path) -> Result<u64, AppError> {
    if dest.exists() {
        return Err(AppError::conflict("backup.exists").with_detail(dest.display().to_string()));
    }
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = with_suffix(dest, ".partial");
    let mut cmd = std::process::Command::new("pg_dump");
    cmd.arg("--format=custom").arg("--no-owner").arg("--file").arg(&tmp).arg("--dbname").arg(url);
    if let Some(s) = schema {
        cmd.arg("--schema").arg(s);
    }
    let out = cmd.output().map_err(io)?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(AppError::new(kehu_core::ErrorKind::Internal, "backup.pg_dump_failed")
            .with_detail(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    std::fs::rename(&tmp, dest).map_err(io)?;
    Ok(std::fs::metadata(dest).map_err(io)?.len())
}

/// Whether `file` is a `pg_dump` custom-format file.
pub fn is_pg_dump(file: &Path) -> bool {
    let mut head = [0u8; 5];
    std::fs::File::open(file).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head)).is_ok()
        && &head == b"PGDMP"
}

/// `pg_restore` a custom-format dump into the database at `url`, in one transaction.
pub fn pg_restore(url: &str, file: &Path) -> Result<(), AppError> {
    let out = std::process::Command::new("pg_restore")
        .arg("--no-owner")
        .arg("--single-transaction")
        .arg("--exit-on-error")
        .arg("--dbname")
        .arg(url)
        .arg(file)
        .output()
        .map_err(io)?;
    if !out.status.success() {
        return Err(AppError::invalid("backup.pg_restore_failed")
            .with_detail(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(())
}
