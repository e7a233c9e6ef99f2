//! The canonical dump: a text rendering of every archived table that is byte-identical for the
//! same data on SQLite and PostgreSQL. One header line per table (`## name: column:class, …`),
//! then one JSON array per row in key order; JSON text columns are re-serialised with sorted
//! keys. Used to prove that an archive round trip or a backup lost nothing.

use super::{canonical_json, io_err, plan, Section};
use crate::conn::{Db, Tx};
use futures_util::StreamExt;
use kehu_core::AppError;
use serde_json::Value as Json;
use std::io::Write;

/// Write the dump of the database `db` as one consistent snapshot.
pub async fn dump(db: &Db, out: &mut impl Write) -> Result<(), AppError> {
    let mut tx = db.snapshot().await?;
    let r = dump_tx(&mut tx, out).await;
    tx.rollback().await?;
    r
}

/// The dump as a string (tests, small databases).
pub async fn dump_string(db: &Db) -> Result<String, AppError> {
    let mut buf = Vec::new();
    dump(db, &mut buf).await?;
    String::from_utf8(buf).map_err(|e| AppError::internal(e.to_string()))
}

/// Write the dump of what `tx` sees.
pub async fn dump_tx(tx: &mut Tx, out: &mut impl Write) -> Result<(), AppError> {
    let sections = plan(tx).await?;
    writeln!(out, "# kehu canonical dump").map_err(io_err)?;
    for s in &sections {
        section(tx, s, out).await?;
    }
    Ok(())
}

async fn section(tx: &mut Tx, s: &Section, out: &mut impl Write) -> Result<(), AppError> {
    let cols: Vec<String> = s.columns.iter().map(|(c, cl)| format!("{c}:{}", cl.as_str())).collect();
    writeln!(out, "## {}: {}", s.name, cols.join(", ")).map_err(io_err)?;
    let sql = s.select_sql(tx.backend());
    let mut rows = tx.stream(&sql, vec![])?;
    let mut n = 0u64;
    while let Some(r) = rows.next().await {
        // JSON stored as text is written in canonical form (keys sorted).
        let vals: Vec<Json> = s
            .row_json(&r?)?
            .into_iter()
            .zip(&s.columns)
            .map(|(v, (c, _))| match v {
                Json::String(text) if s.json.contains(c) => match serde_json::from_str::<Json>(&text) {
                    Ok(j) => Json::String(canonical_json(&j).to_string()),
                    Err(_) => Json::String(text),
                },
                other => other,
            })
            .collect();
        writeln!(out, "{}", Json::Array(vals)).map_err(io_err)?;
        n += 1;
    }
    writeln!(out, "-- {n} rows").map_err(io_err)?;
    Ok(())
}

/// Where two dumps first differ: the line number, the table it belongs to, and both lines.
pub fn first_difference(a: &str, b: &str) -> Option<String> {
    let (mut la, mut lb) = (a.lines(), b.lines());
    let mut table = "";
    let mut n = 0usize;
    loop {
        n += 1;
        match (la.next(), lb.next()) {
            (None, None) => return None,
            (x, y) if x == y => {
                if let Some(t) = x.and_then(|l| l.strip_prefix("## ")) {
                    table = t.split(':').next().unwrap_or(t);
                }
            }
            (x, y) => {
                return Some(format!(
                    "line {n} (table {table}):\n  left:  {}\n  right: {}",
                    x.unwrap_or("<end>"),
                    y.unwrap_or("<end>")
                ))
            }
        }
    }
}
