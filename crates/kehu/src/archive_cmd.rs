//! `kehu export-archive`, `import-archive`, `dump`, `backup` and `restore`.

use crate::config::Config;
use crate::describe;
use anyhow::{Context, Result};
use kehu_app::backup::{BackupTarget, Dest};
use kehu_db::backup as store;
use kehu_db::conn::ConnectOptions;
use kehu_db::{Db, Raw};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn app_err(e: kehu_core::AppError) -> anyhow::Error {
    if let Some(d) = &e.detail {
        tracing::debug!(detail = %d, code = %e.code, "error detail");
    }
    anyhow::anyhow!("{}", describe(&e))
}

pub fn target(cfg: &Config, url: &str) -> BackupTarget {
    BackupTarget { dir: cfg.data_dir.join("backups"), url: url.to_string(), pg_schema: None }
}

async fn connect(cfg: &Config) -> Result<(Db, String)> {
    let url = cfg.database_url().context("creating the data directory")?;
    let opts = ConnectOptions { max_connections: cfg.max_connections, pg_schema: None };
    let db = Db::connect(&url, &opts).await.context("opening the database")?;
    Ok((db, url))
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_048_576.0)
}

/// `kehu export-archive --out FILE`
pub async fn export_archive(cfg: &Config, out: &Path) -> Result<()> {
    let app = crate::open(cfg).await?;
    let t = Instant::now();
    let s = kehu_db::archive::write::export(&app.db, out, env!("CARGO_PKG_VERSION")).await.map_err(app_err)?;
    for (table, n) in &s.tables {
        eprintln!("  {table:<24} {n:>10}");
    }
    println!(
        "archive written: {} ({} rows, {}) in {:.1}s",
        s.path.display(),
        s.rows,
        mb(s.bytes),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `kehu import-archive --in FILE`: into the configured database, which must be empty.
pub async fn import_archive(cfg: &Config, input: &Path) -> Result<()> {
    // Not under a running server (SQLite: the lock `kehu serve` holds).
    let _lock = match store::sqlite_path(&cfg.database_url()?) {
        Some(p) => Some(store::ServerLock::acquire(&p).map_err(app_err)?),
        None => None,
    };
    let (db, _) = connect(cfg).await?;
    let t = Instant::now();
    let l = kehu_db::archive::load::import(&db, input).await.map_err(app_err)?;
    let backend = db.backend().name();
    db.close().await;
    println!(
        "archive loaded into {backend} ({} rows from {} on {}, Kehu {}) in {:.1}s",
        l.rows,
        input.display(),
        l.source_backend,
        l.kehu_version,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `kehu dump [--out FILE]`: the canonical dump (identical for the same data on either backend).
pub async fn dump(cfg: &Config, out: Option<&Path>) -> Result<()> {
    let (db, _) = connect(cfg).await?;
    match out {
        Some(p) => {
            let mut f = std::io::BufWriter::new(std::fs::File::create(p).context("creating the dump file")?);
            kehu_db::archive::dump::dump(&db, &mut f).await.map_err(app_err)?;
            std::io::Write::flush(&mut f)?;
        }
        None => {
            let mut f = std::io::BufWriter::new(std::io::stdout().lock());
            kehu_db::archive::dump::dump(&db, &mut f).await.map_err(app_err)?;
            std::io::Write::flush(&mut f)?;
        }
    }
    Ok(())
}

/// `kehu backup [--out PATH]`: online; recorded on the admin page unless `--out` names a file.
pub async fn backup(cfg: &Config, out: Option<PathBuf>) -> Result<()> {
    let app = crate::open(cfg).await?;
    let t = Instant::now();
    let (file, size) = match out {
        None => {
            let run = app.backup_now(&kehu_core::perm::Actor::system()).await.map_err(app_err)?;
            (PathBuf::from(run.file.unwrap_or_default()), run.size.unwrap_or(0) as u64)
        }
        // The same choice as the admin page: pg_dump when it works, else the archive.
        Some(p) => {
            kehu_app::backup::write(&app.db, &cfg.database_url()?, None, Dest::File(&p)).await.map_err(app_err)?
        }
    };
    let kind = backup_kind(&file);
    println!("backup written: {} ({kind}, {}) in {:.1}s", file.display(), mb(size), t.elapsed().as_secs_f64());
    Ok(())
}

/// What a backup file holds, as `kehu restore` will tell it apart.
fn backup_kind(file: &Path) -> &'static str {
    let mut head = [0u8; 16];
    let read = std::fs::File::open(file).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head));
    match read {
        Ok(()) if &head == b"SQLite format 3\0" => "SQLite database",
        _ if store::is_pg_dump(file) => "pg_dump",
        _ => "Kehu archive",
    }
}

/// `kehu restore FILE`: SQLite file backups replace the database (the server must be stopped;
/// the old file is kept as `*.before-restore`); `pg_dump` files and archives load into an
/// empty database.
pub async fn restore(cfg: &Config, file: &Path) -> Result<()> {
    let url = cfg.database_url()?;
    anyhow::ensure!(file.is_file(), "{}: no such file", file.display());
    if store::is_pg_dump(file) {
        anyhow::ensure!(url.starts_with("postgres"), "a pg_dump file restores into PostgreSQL only");
        let (db, _) = connect(cfg).await?;
        let q =
            Raw::new("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()", vec![]);
        let n = db.one(&q).await?.and_then(|r| r.i64(0)).unwrap_or(0);
        db.close().await;
        if n > 0 {
            return Err(app_err(kehu_core::AppError::conflict("archive.target_not_empty")));
        }
        store::pg_restore(&url, file).map_err(app_err)?;
        println!("restored {} into the PostgreSQL database", file.display());
        return Ok(());
    }
    let mut head = [0u8; 16];
    let is_sqlite = std::fs::File::open(file)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .map(|_| &head == b"SQLite format 3\0")
        .unwrap_or(false);
    if is_sqlite {
        let path = store::sqlite_path(&url).context("a SQLite backup restores into SQLite only")?;
        let kept = store::restore_sqlite(&path, file).await.map_err(app_err)?;
        println!("restored {} to {}", file.display(), path.display());
        if let Some(k) = kept {
            println!("the replaced database is kept as {}", k.display());
        }
        return Ok(());
    }
    // Anything else must be a Kehu archive (checked by the loader).
    import_archive(cfg, file).await
}
