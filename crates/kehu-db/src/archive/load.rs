//! Loading an archive into a fresh instance, on either backend, in one transaction.
//!
//! First the whole file is read and checked without touching the database (`read::verify`).
//! Then, in one transaction: every core table is emptied and refilled from the archive (the
//! target's seeded roles and objects are replaced by the archived ones); once the metadata is
//! in, the record tables are created from it by the same runtime DDL that creates objects and
//! fields (names checked again: record-table and column names must be Kehu names, and every
//! archived column must exist in the table the metadata produced); then records and the search
//! documents go in. Any error rolls everything back.

use super::read::{corrupt, verify, Event, Reader};
use super::tables::{self, catalog_columns, catalog_tables, quote, record_table_name, valid_ident, Class};
use super::{from_json, migration_versions};
use crate::conn::{Backend, Db, Raw, Tx};
use crate::{ddl, meta_store, migrate};
use kehu_core::AppError;
use serde_json::Value as Json;
use std::collections::HashSet;
use std::path::Path;

/// What a load wrote.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub kehu_version: String,
    pub source_backend: String,
    pub tables: Vec<(String, u64)>,
    pub rows: u64,
}

/// Load the archive at `path` into `db`, which must hold no user and no record. Migrations are
/// applied first; the archive must come from the same schema (`archive.schema_older` /
/// `archive.schema_newer` otherwise).
pub async fn import(db: &Db, path: &Path) -> Result<Loaded, AppError> {
    // The header first (a wrong version is named as such), then the whole file.
    let header = Reader::open(path)?.header;
    let core: Vec<i64> = crate::schema::versions();
    if header.migrations.iter().any(|v| *v < 1000 && !core.contains(v)) {
        return Err(AppError::invalid("archive.schema_newer").with_detail(format!("{:?}", header.migrations)));
    }
    if core.iter().any(|v| !header.migrations.contains(v)) {
        return Err(AppError::invalid("archive.schema_older").with_detail(format!("{:?}", header.migrations)));
    }
    verify(path)?;
    migrate::run(db).await?;
    let mut tx = db.begin().await?;
    if tx.backend() == Backend::Postgres {
        tx.ddl(&format!("SELECT pg_advisory_xact_lock({})", migrate::DDL_LOCK)).await?;
    }
    let r = load_tx(&mut tx, path).await;
    let out = match r {
        Ok(tables) => {
            tx.commit().await?;
            if db.backend() == Backend::Postgres {
                // Fresh statistics, so the planner knows the tables are no longer empty (names
                // checked by the load).
                let names: Vec<String> = tables.iter().map(|(t, _)| quote(t)).collect();
                db.exec_raw(&format!("ANALYZE {}", names.join(", "))).await?;
            }
            let rows = tables.iter().map(|t| t.1).sum();
            Ok(Loaded { kehu_version: header.kehu_version, source_backend: header.source_backend, tables, rows })
        }
        Err(e) => {
            tx.rollback().await?;
            Err(e)
        }
    };
    out
}

/// Whether a database holds anything worth keeping: a user, or a record of any object.
pub async fn is_empty(tx: &mut Tx) -> Result<bool, AppError> {
    let users = tx.one(&Raw::new("SELECT COUNT(*) FROM users", vec![])).await?.and_then(|r| r.i64(0));
    if users != Some(0) {
        return Ok(false);
    }
    for t in existing_record_tables(tx).await? {
        let q = Raw::new(format!("SELECT 1 FROM {} LIMIT 1", quote(&t)), vec![]);
        if tx.one(&q).await?.is_some() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Record tables named by the metadata the transaction sees (checked names only).
async fn existing_record_tables(tx: &mut Tx) -> Result<Vec<String>, AppError> {
    let catalog = catalog_tables(tx).await?;
    let rows = tx.all(&Raw::new("SELECT table_name FROM meta_objects", vec![])).await?;
    Ok(rows.iter().filter_map(|r| r.string(0)).filter(|t| record_table_name(t) && catalog.contains(t)).collect())
}

/// Rows per INSERT: under both backends' bound-parameter limits.
fn batch_rows(columns: usize) -> usize {
    (30_000 / columns.max(1)).clamp(1, 500)
}

struct Target {
    name: String,
    columns: Vec<(String, Class)>,
    batch: Vec<Vec<Json>>,
    rows: u64,
    started: std::time::Instant,
}

async fn load_tx(tx: &mut Tx, path: &Path) -> Result<Vec<(String, u64)>, AppError> {
    if !is_empty(tx).await? {
        return Err(AppError::conflict("archive.target_not_empty"));
    }
    let applied = migration_versions(tx).await?;
    let old_tables = existing_record_tables(tx).await?;
    let catalog: HashSet<String> = catalog_tables(tx).await?.into_iter().collect();
    let mut reader = Reader::open(path)?;
    if reader.header.migrations.iter().filter(|v| **v < 1000).ne(applied.iter().filter(|v| **v < 1000)) {
        return Err(AppError::invalid("archive.schema_older").with_detail(format!("target has {applied:?}")));
    }
    let mut objects_created: Option<HashSet<String>> = None;
    let mut seen: HashSet<String> = HashSet::new();
    let mut cur: Option<Target> = None;
    let mut tables_out = Vec::new();
    while let Some(ev) = reader.next_event()? {
        match ev {
            Event::Table { name, columns } => {
                let core = tables::find(&name);
                let is_record = core.is_none();
                let before_records = crate::schema::data_tables().any(|c| c.name == name);
                if !before_records && objects_created.is_none() {
                    objects_created = Some(create_objects(tx, &old_tables).await?);
                }
                if is_record {
                    let known = objects_created.as_ref().is_some_and(|s| s.contains(&name));
                    if !known {
                        return Err(corrupt(format!("table {name} is neither core nor named by the metadata")));
                    }
                } else if !catalog.contains(&name) {
                    return Err(corrupt(format!("table {name} does not exist here")));
                }
                let have = catalog_columns(tx, &name).await?;
                if have != columns {
                    return Err(AppError::invalid("archive.schema_mismatch")
                        .with_detail(format!("{name}: archive columns {columns:?}, database columns {have:?}")));
                }
                if !is_record {
                    tx.exec(&Raw::new(format!("DELETE FROM {}", quote(&name)), vec![])).await?;
                }
                seen.insert(name.clone());
                cur = Some(Target {
                    name,
                    columns: have,
                    batch: Vec::new(),
                    rows: 0,
                    started: std::time::Instant::now(),
                });
            }
            Event::Row(vals) => {
                let t = cur.as_mut().ok_or_else(|| corrupt("row outside a table"))?;
                t.batch.push(vals);
                t.rows += 1;
                if t.batch.len() >= batch_rows(t.columns.len()) {
                    flush(tx, t).await?;
                }
            }
            Event::End => {
                let mut t = cur.take().ok_or_else(|| corrupt("end outside a table"))?;
                flush(tx, &mut t).await?;
                tracing::info!(table = %t.name, rows = t.rows, secs = t.started.elapsed().as_secs_f64(), "table loaded");
            }
            Event::Trailer { tables } => tables_out = tables,
        }
    }
    let created = objects_created.unwrap_or_default();
    for c in crate::schema::data_tables().chain(crate::schema::derived_tables()) {
        if !seen.contains(c.name) {
            return Err(corrupt(format!("table {} is missing", c.name)));
        }
    }
    if let Some(t) = created.iter().find(|t| !seen.contains(*t)) {
        return Err(corrupt(format!("record table {t} is missing")));
    }
    Ok(tables_out)
}

/// Drop the target's (empty) record tables and create the archived objects' tables and columns
/// from the metadata just loaded. Returns the record tables created.
async fn create_objects(tx: &mut Tx, old: &[String]) -> Result<HashSet<String>, AppError> {
    let b = tx.backend();
    for t in old {
        tx.ddl(&format!("DROP TABLE {}", quote(t))).await?;
    }
    let objects = tx.all(&Raw::new("SELECT id, table_name FROM meta_objects ORDER BY table_name", vec![])).await?;
    let fields = meta_store::fields_in(tx).await?;
    let mut created = HashSet::new();
    for o in &objects {
        let (Some(id), Some(table)) = (o.uuid(0), o.string(1)) else {
            return Err(corrupt("meta_objects row"));
        };
        if !record_table_name(&table) || !created.insert(table.clone()) {
            return Err(corrupt(format!("object table name {table:?}")));
        }
        for sql in ddl::create_object_table(b, &table) {
            tx.ddl(&sql).await?;
        }
        for f in fields.iter().filter(|f| f.object_id == id) {
            if !valid_ident(&f.column) || !f.column.starts_with("f_") {
                return Err(corrupt(format!("field column name {:?}", f.column)));
            }
            for sql in ddl::add_field(b, &table, f) {
                tx.ddl(&sql).await?;
            }
        }
    }
    Ok(created)
}

async fn flush(tx: &mut Tx, t: &mut Target) -> Result<(), AppError> {
    if t.batch.is_empty() {
        return Ok(());
    }
    // A built statement: `?` placeholders on SQLite (its `$n` are named parameters, which make
    // preparing a statement of thousands of them slow), `$n` on PostgreSQL.
    let mut q = sea_query::Query::insert();
    q.into_table(sea_query::Alias::new(&t.name)).columns(t.columns.iter().map(|(c, _)| sea_query::Alias::new(c)));
    for row in &t.batch {
        let mut vals = Vec::with_capacity(t.columns.len());
        for ((c, class), v) in t.columns.iter().zip(row) {
            let v = from_json(*class, v).map_err(|e| corrupt(format!("{}.{c}: {e}", t.name)))?;
            vals.push(sea_query::SimpleExpr::Value(v));
        }
        q.values_panic(vals);
    }
    tx.exec(&q).await?;
    t.batch.clear();
    Ok(())
}
