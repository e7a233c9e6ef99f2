//! Writing an archive: one gzip-compressed stream of JSON lines, read from one consistent
//! snapshot, in constant memory.
//!
//! ```text
//! {"format":"kehu-archive","format_version":1,"kehu_version":…,"source_backend":…,"migrations":[…],"created_at":…}
//! {"table":"meta_objects","columns":[["api_name","text"],…]}
//! ["company", …]                       one JSON array per row, columns in the order above
//! {"end":"meta_objects","rows":3}
//! …
//! {"trailer":{"tables":[["meta_objects",3],…],"rows":N,"sha256":"…"}}
//! ```
//! The checksum covers every uncompressed byte before the trailer line. The file is written
//! under a temporary name and renamed when complete, so a failed export leaves nothing behind.

use super::{io_err, migration_versions, plan, Section, FORMAT, FORMAT_VERSION};
use crate::conn::{Db, Tx};
use flate2::write::GzEncoder;
use futures_util::StreamExt;
use kehu_core::AppError;
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Summary {
    pub path: PathBuf,
    pub tables: Vec<(String, u64)>,
    pub rows: u64,
    /// Size of the file on disk.
    pub bytes: u64,
}

/// Lines out, hashed as they go.
pub(crate) struct Lines<W: Write> {
    pub w: W,
    pub hash: Sha256,
}

impl<W: Write> Lines<W> {
    pub fn line(&mut self, v: &Json) -> Result<(), AppError> {
        let mut buf = serde_json::to_vec(v).map_err(|e| AppError::internal(e.to_string()))?;
        buf.push(b'\n');
        self.hash.update(&buf);
        self.w.write_all(&buf).map_err(io_err)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `name.partial` beside `path`.
pub(crate) fn partial_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

/// Write the whole database to a new archive file at `path` (refused if it exists).
pub async fn export(db: &Db, path: &Path, kehu_version: &str) -> Result<Summary, AppError> {
    if path.exists() {
        return Err(AppError::conflict("archive.exists").with_detail(path.display().to_string()));
    }
    let tmp = partial_path(path);
    let r = export_to(db, &tmp, kehu_version).await;
    match r {
        Ok((tables, rows)) => {
            std::fs::rename(&tmp, path).map_err(io_err)?;
            let bytes = std::fs::metadata(path).map_err(io_err)?.len();
            Ok(Summary { path: path.to_path_buf(), tables, rows, bytes })
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

async fn export_to(db: &Db, tmp: &Path, kehu_version: &str) -> Result<(Vec<(String, u64)>, u64), AppError> {
    let file = std::fs::File::create(tmp).map_err(io_err)?;
    let gz = GzEncoder::new(BufWriter::with_capacity(1 << 20, file), flate2::Compression::new(3));
    let mut out = Lines { w: gz, hash: Sha256::new() };
    let mut tx = db.snapshot().await?;
    let r = write_tx(&mut tx, &mut out, db.backend().name(), kehu_version).await;
    tx.rollback().await?;
    let (tables, rows) = r?;
    let buf = out.w.finish().map_err(io_err)?;
    let file = buf.into_inner().map_err(|e| io_err(e.into_error()))?;
    file.sync_all().map_err(io_err)?;
    Ok((tables, rows))
}

/// Write every section `tx` sees, then the trailer.
pub(crate) async fn write_tx<W: Write>(
    tx: &mut Tx,
    out: &mut Lines<W>,
    backend: &str,
    kehu_version: &str,
) -> Result<(Vec<(String, u64)>, u64), AppError> {
    let sections = plan(tx).await?;
    let migrations = migration_versions(tx).await?;
    out.line(&json!({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kehu_version": kehu_version,
        "source_backend": backend,
        "migrations": migrations,
        "created_at": kehu_core::now_micros(),
    }))?;
    let mut tables = Vec::with_capacity(sections.len());
    let mut total = 0;
    for s in &sections {
        let n = section(tx, s, out).await?;
        tables.push((s.name.clone(), n));
        total += n;
    }
    let sha = hex(&std::mem::take(&mut out.hash).finalize());
    let list: Vec<Json> = tables.iter().map(|(t, n)| json!([t, n])).collect();
    out.line(&json!({"trailer": {"tables": list, "rows": total, "sha256": sha}}))?;
    Ok((tables, total))
}

async fn section<W: Write>(tx: &mut Tx, s: &Section, out: &mut Lines<W>) -> Result<u64, AppError> {
    let cols: Vec<Json> = s.columns.iter().map(|(c, cl)| json!([c, cl.as_str()])).collect();
    out.line(&json!({"table": s.name, "columns": cols}))?;
    let sql = s.select_sql(tx.backend());
    let mut rows = tx.stream(&sql, vec![])?;
    let mut n = 0u64;
    while let Some(r) = rows.next().await {
        out.line(&Json::Array(s.row_json(&r?)?))?;
        n += 1;
    }
    drop(rows);
    out.line(&json!({"end": s.name, "rows": n}))?;
    Ok(n)
}
